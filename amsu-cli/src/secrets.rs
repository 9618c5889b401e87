//! Where passwords come from: a `--…-password-file`, else an environment variable, else
//! the URL. They are wrapped in `Secret` at once and never printed.

use std::io::IsTerminal;
use std::path::Path;

use amsu_core::{Secret, ServerAddr};
use anyhow::{Context, Result};

/// Reads a password file (first line, without the line ending).
pub fn read_password_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    Ok(Secret::new(
        text.lines().next().unwrap_or_default().to_string(),
    ))
}

/// The password from a file flag, else from `env_var`, else `None`.
pub fn password(file: Option<&Path>, env_var: &str) -> Result<Option<Secret>> {
    if let Some(f) = file {
        return read_password_file(f).map(Some);
    }
    Ok(std::env::var(env_var).ok().map(Secret::new))
}

/// Where else a password may come from.
#[derive(Debug, Clone, Default)]
pub struct Fallbacks<'a> {
    /// A MySQL option file.
    pub defaults_file: Option<&'a Path>,
    /// Prompt on a terminal.
    pub ask: bool,
}

/// Parses a server URL and fills in its password: the file flag, else the environment
/// (these win over a password in the URL, which shows in `ps`), else the URL, else the
/// option file (`[amsu-WHAT]`, then `[client]`), else a prompt with `--ask-pass`.
pub fn server(
    url: &str,
    file: Option<&Path>,
    env_var: &str,
    what: &str,
    fallbacks: &Fallbacks<'_>,
) -> Result<ServerAddr> {
    let mut addr: ServerAddr = url
        .parse()
        .with_context(|| format!("--{what} is not a valid server URL"))?;
    if let Some(p) = password(file, env_var)? {
        addr.password = Some(p);
    }
    if addr.password.is_none() {
        if let Some(path) = fallbacks.defaults_file {
            let opts = option_file(path)?;
            let section = format!("amsu-{what}");
            let get = |key: &str| {
                opts.iter()
                    .filter(|(s, k, _)| (s == &section || s == "client") && k == key)
                    .max_by_key(|(s, _, _)| s == &section)
                    .map(|(_, _, v)| v.clone())
            };
            addr.password = get("password").map(Secret::new);
        }
    }
    if addr.password.is_none() && fallbacks.ask && std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("Password for {addr}: "))
            .context("cannot read the password from the terminal")?;
        addr.password = Some(Secret::new(p));
    }
    Ok(addr)
}

/// Reads a MySQL option file into (section, key, value) triples; `#` and `;` start
/// comments, values may be quoted.
pub fn option_file(path: &Path) -> Result<Vec<(String, String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the option file {}", path.display()))?;
    Ok(parse_option_file(&text))
}

fn parse_option_file(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        out.push((section.clone(), key.replace('-', "_"), unescape(value)));
    }
    out
}

/// The escape sequences of MySQL option-file values: `\b \t \n \r \\ \s`, and `\"` `\'`
/// inside quotes; a backslash before anything else stays.
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

    #[test]
    fn reads_client_and_amsu_sections() {
        let o = parse_option_file(
            "# comment\n[client]\nuser=admin\npassword = \"p w\"\n[amsu-master]\npassword='m#1'\n",
        );
        assert!(o.contains(&("client".into(), "password".into(), "p w".into())));
        assert!(o.contains(&("amsu-master".into(), "password".into(), "m#1".into())));
    }

    #[test]
    fn values_written_by_amsu_read_back_unchanged() {
        use amsu_mysql::dialect::VarValue;
        for pw in [
            r#"back\slash"#,
            r#"quo"te"#,
            r#"\"both\\"#,
            "tab\tand\nnewline",
            "plain-Pw_1",
            "sp ace # not a comment",
            "'single'",
        ] {
            let text = format!(
                "[client]\npassword = {}\n",
                VarValue::Str(pw.into()).option_file()
            );
            let o = parse_option_file(&text);
            assert_eq!(o[0].2, pw, "{text}");
        }
        // MySQL's own escapes, and a backslash before anything else stays.
        assert_eq!(unescape(r"a\sb\\c\qd"), r"a b\c\qd");
    }

    #[test]
    fn option_file_password_fills_in_and_section_wins() {
        let dir = std::env::temp_dir().join(format!("amsu-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("my.cnf");
        std::fs::write(
            &f,
            "[client]\npassword=client-pw\n[amsu-replica]\npassword=replica-pw\n",
        )
        .unwrap();
        let fb = Fallbacks {
            defaults_file: Some(&f),
            ask: false,
        };
        let m = server("mysql://root@h", None, "AMSU_TEST_UNSET_VAR", "master", &fb).unwrap();
        let r = server(
            "mysql://root@h",
            None,
            "AMSU_TEST_UNSET_VAR",
            "replica",
            &fb,
        )
        .unwrap();
        assert_eq!(m.password.unwrap().expose(), "client-pw");
        assert_eq!(r.password.unwrap().expose(), "replica-pw");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
