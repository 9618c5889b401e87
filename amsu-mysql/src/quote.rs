//! Quoting of identifiers and string literals for SQL text sent to the server.

/// Quotes an identifier with backticks, doubling any backtick inside: works for every
/// name, spaces, quotes, unicode and reserved words included.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `db`.`name`, both quoted.
pub fn qualified(db: &str, name: &str) -> String {
    format!("{}.{}", ident(db), ident(name))
}

/// A single-quoted string literal: quotes doubled, backslash and NUL escaped. amsu's own
/// sessions never enable `NO_BACKSLASH_ESCAPES`, so this is read back exactly.
pub fn string(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('\'');
    for c in value.chars() {
        match c {
            '\'' => s.push_str("''"),
            '\\' => s.push_str("\\\\"),
            '\0' => s.push_str("\\0"),
            c => s.push(c),
        }
    }
    s.push('\'');
    s
}

/// `'user'@'host'`, for account statements.
pub fn account(user: &str, host: &str) -> String {
    format!("{}@{}", string(user), string(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(ident("select"), "`select`");
        assert_eq!(qualified("my db", "t"), "`my db`.`t`");
    }

    #[test]
    fn quotes_strings_without_backslash_escapes() {
        assert_eq!(string("it's"), "'it''s'");
        assert_eq!(string("a\\b"), "'a\\\\b'");
        assert_eq!(account("u", "%"), "'u'@'%'");
    }
}
