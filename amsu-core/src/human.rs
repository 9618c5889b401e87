//! Text for people, written once: byte counts, durations, and locations (URLs) with the
//! password left out; and the percent-decoding of URL parts.

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A byte count in binary units with one decimal: `512 bytes`, `1.5 KiB`, `40.0 MiB`,
/// `2.0 GiB`.
pub fn bytes(b: u64) -> String {
    if b >= GIB {
        format!("{:.1} GiB", b as f64 / GIB as f64)
    } else if b >= MIB {
        format!("{:.1} MiB", b as f64 / MIB as f64)
    } else if b >= KIB {
        format!("{:.1} KiB", b as f64 / KIB as f64)
    } else {
        format!("{b} bytes")
    }
}

/// A duration in seconds: `42 s`, `3 min 5 s`, `1.5 h`; whole hours from a day on
/// (`48 h`).
pub fn secs(s: u64) -> String {
    if s >= 86400 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 3600 {
        format!("{:.1} h", s as f64 / 3600.0)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// A location as shown in messages: a password in a URL's user part is left out
/// (`ftp://u:pw@host/dir` → `ftp://u@host/dir`); anything else is returned as given.
pub fn without_password(loc: &str) -> String {
    let Some((scheme, rest)) = loc.split_once("://") else {
        return loc.to_string();
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}@{host}{path}")
        }
        None => loc.to_string(),
    }
}

/// A URL part with its `%XX` escapes decoded. A `%` not followed by two hex digits is
/// kept as written; decoded bytes that are not UTF-8 are an error (the caller says which
/// URL).
pub fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(40 << 20), "40.0 MiB");
        assert_eq!(bytes((2 << 30) + (100 << 20)), "2.1 GiB");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs(42), "42 s");
        assert_eq!(secs(185), "3 min 5 s");
        assert_eq!(secs(5400), "1.5 h");
        assert_eq!(secs(2 * 86400), "48 h");
        assert_eq!(secs(86400 + 60), "24.0 h");
    }

    #[test]
    fn passwords_are_left_out_of_locations() {
        assert_eq!(
            without_password("ftp://u:s%40cret@host:21/dir/img"),
            "ftp://u@host:21/dir/img"
        );
        assert_eq!(without_password("ftps://u@host/x"), "ftps://u@host/x");
        assert_eq!(without_password("ftp://host"), "ftp://host");
        // A password holding `@` or `/` unescaped: everything up to the last `@` of the
        // authority goes.
        assert_eq!(without_password("ftp://u:a@b@host/d"), "ftp://u@host/d");
        assert_eq!(without_password("/var/backups/img"), "/var/backups/img");
        assert_eq!(without_password("s3://bucket/p@x"), "s3://bucket/p@x");
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("s%40cret").unwrap(), "s@cret");
        assert_eq!(percent_decode("a%2Fb%2fc").unwrap(), "a/b/c");
        assert_eq!(
            percent_decode("100%zz%").unwrap(),
            "100%zz%",
            "kept as written"
        );
        assert_eq!(percent_decode("p%C3%A4ss").unwrap(), "päss");
        assert_eq!(percent_decode("päss").unwrap(), "päss");
        assert!(percent_decode("%FF%FE").is_err(), "not UTF-8");
    }
}
