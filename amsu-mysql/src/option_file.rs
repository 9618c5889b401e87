//! MySQL option files (`my.cnf`): the one reader and the one value writer amsu uses.
//!
//! The syntax is the one the MySQL and MariaDB clients read (mysys `my_default.c`, and
//! what `my_print_defaults` prints): `[group]` lines, `key = value` or a bare `key`,
//! whole-line comments starting with `#` or `;`, and a `#` outside quotes ending the line.
//! A value wholly in matching `"` or `'` quotes loses them; the escapes `\b \t \n \r \\ \s`
//! and `\"` `\'` are decoded, and a backslash before anything else stays. Dashes in keys
//! read as underscores (`skip-slave-start` is `skip_slave_start`). `!include` and
//! `!includedir` lines are not followed.
//!
//! [`value`] writes a value that this reader, and the servers' own, read back unchanged.

use std::path::Path;

/// One `key = value` line of an option file, under the group it appears in.
#[derive(Clone, PartialEq, Eq)]
pub struct OptionLine {
    /// The `[group]` it is under (`client`, `mysqld`, `amsu-master`…); empty before any.
    pub group: String,
    /// The option name, dashes read as underscores.
    pub key: String,
    /// The decoded value; empty for a bare `key`.
    pub value: String,
}

impl std::fmt::Debug for OptionLine {
    // The value may be a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptionLine")
            .field("group", &self.group)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The options of one option file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptionFile {
    /// Every option line, in the order of the file.
    pub lines: Vec<OptionLine>,
}

impl OptionFile {
    /// Parses the text of an option file.
    pub fn parse(text: &str) -> OptionFile {
        let mut group = String::new();
        let mut lines = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('!') {
                // !include / !includedir: not followed.
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                if let Some((name, _)) = rest.split_once(']') {
                    group = name.trim().to_string();
                }
                continue;
            }
            let line = remove_end_comment(line).trim_end();
            let (key, value) = match line.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (line, ""),
            };
            lines.push(OptionLine {
                group: group.clone(),
                key: key.replace('-', "_"),
                value: unescape(unquote(value)),
            });
        }
        OptionFile { lines }
    }

    /// Reads and parses the option file at `path`.
    pub fn read(path: &Path) -> std::io::Result<OptionFile> {
        Ok(OptionFile::parse(&std::fs::read_to_string(path)?))
    }

    /// The value of `key` in `group`: the last one wins, as in the MySQL clients.
    pub fn get(&self, group: &str, key: &str) -> Option<&str> {
        let key = key.replace('-', "_");
        self.lines
            .iter()
            .rev()
            .find(|l| l.group == group && l.key == key)
            .map(|l| l.value.as_str())
    }
}

/// Writes `value` as an option-file value that reads back unchanged: bare when it is
/// plain, else in double quotes with `\\`, `\"`, `\n`, `\r` and `\t` escaped. A NUL
/// cannot be held (the servers' reader ends the value there); check with
/// [`can_hold`] first where the value comes from outside.
pub fn value(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:+".contains(c))
    {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether an option file can hold `value` ([`value`] writes everything but a NUL).
pub fn can_hold(value: &str) -> bool {
    !value.contains('\0')
}

/// The line up to a `#` outside quotes (a backslash protects a quote inside quotes).
fn remove_end_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escape = false;
    for (i, c) in line.char_indices() {
        if (c == '\'' || c == '"') && !escape {
            match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                Some(_) => {}
            }
        } else if quote.is_none() && c == '#' {
            return &line[..i];
        }
        escape = quote.is_some() && c == '\\' && !escape;
    }
    line
}

/// A value wholly in matching quotes, without them.
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// The escape sequences of option-file values: `\b \t \n \r \\ \s`, `\"` and `\'`; a
/// backslash before anything else stays.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('s') => out.push(' '),
            Some(c @ ('\\' | '"' | '\'')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> String {
        OptionFile::parse(&format!("[client]\n{text}\n"))
            .get("client", "x")
            .unwrap()
            .to_string()
    }

    #[test]
    fn groups_comments_and_quotes() {
        let o = OptionFile::parse(
            "# comment\n; other\n[client]\nuser=admin\npassword = \"p w\"\n\
             [amsu-master]\npassword='m#1'\nskip-slave-start\n!include /etc/x.cnf\n",
        );
        assert_eq!(o.get("client", "password"), Some("p w"));
        assert_eq!(o.get("client", "user"), Some("admin"));
        assert_eq!(o.get("amsu-master", "password"), Some("m#1"));
        assert_eq!(o.get("amsu-master", "skip_slave_start"), Some(""));
        assert_eq!(o.get("amsu-master", "skip-slave-start"), Some(""));
        assert_eq!(o.get("client", "host"), None);
        assert_eq!(o.lines.len(), 4);
    }

    #[test]
    fn last_value_wins() {
        let o = OptionFile::parse("[client]\npassword=a\npassword=b\n");
        assert_eq!(o.get("client", "password"), Some("b"));
    }

    /// The cases `my_print_defaults` (MariaDB 10.11) was run on; its output is the
    /// expected value. The integration test `option_files` runs it on more.
    #[test]
    fn reads_as_the_mysql_clients_do() {
        assert_eq!(one(r#"x = "a\\b\"c""#), r#"a\b"c"#);
        assert_eq!(one("x=ab#c"), "ab");
        assert_eq!(one(r"x = a\sb  # comment"), "a b");
        assert_eq!(one(r#"x="q#" tail"#), r#""q#" tail"#);
        assert_eq!(one(r"x='s\'q'"), "s'q");
        assert_eq!(one(r"x = a\qd"), r"a\qd");
    }

    #[test]
    fn values_written_read_back_unchanged() {
        for pw in [
            r#"back\slash"#,
            r#"quo"te"#,
            r#"\"both\\"#,
            "tab\tand\nnewline\rcr",
            "plain-Pw_1",
            "sp ace # not a comment",
            "'single'",
            "#start",
            "",
            " lead and trail ",
            "trailing\\",
        ] {
            let line = format!("x = {}", value(pw));
            assert_eq!(one(&line), pw, "{line}");
        }
        assert_eq!(value("plain-Pw_1"), "plain-Pw_1");
        assert!(can_hold("a\nb") && !can_hold("a\0b"));
    }

    #[test]
    fn debug_hides_values() {
        let o = OptionFile::parse("[client]\npassword=s3cret\n");
        assert!(!format!("{o:?}").contains("s3cret"));
    }
}
