//! The chunk encoding: `LOAD DATA`'s default text format (tab-separated fields, `\n`
//! lines, `\` escapes, `\N` for NULL), written from the raw bytes the server sends so
//! that every byte of every value round-trips.

use amsu_mysql::SqlValue;

/// Appends one field to `out`, escaped for `LOAD DATA … FIELDS ESCAPED BY '\\'`.
pub fn push_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.extend_from_slice(b"\\N"),
        Some(bytes) => {
            for &b in bytes {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0 => out.extend_from_slice(b"\\0"),
                    b => out.push(b),
                }
            }
        }
    }
}

/// Appends a whole row (fields joined by tabs, ended by a newline).
#[cfg(test)]
pub(crate) fn push_row<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'a [u8]>>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        push_field(out, f);
    }
    out.push(b'\n');
}

/// Appends a row of text-protocol values. The text protocol sends every non-NULL value
/// as bytes; other variants only appear with the binary protocol and are written as
/// their SQL literal without quotes.
pub fn push_values(out: &mut Vec<u8>, values: &[SqlValue]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match v {
            SqlValue::Null => push_field(out, None),
            SqlValue::Bytes(b) => push_field(out, Some(b)),
            other => push_field(out, other.bytes().as_deref()),
        }
    }
    out.push(b'\n');
}

/// Decodes one line of the encoding back into fields (used by tests and by readers that
/// verify images).
#[cfg(test)]
pub(crate) fn decode_line(line: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut fields = Vec::new();
    for raw in line.split(|&b| b == b'\t') {
        if raw == b"\\N" {
            fields.push(None);
            continue;
        }
        let mut v = Vec::with_capacity(raw.len());
        let mut it = raw.iter();
        while let Some(&b) = it.next() {
            if b == b'\\' {
                match it.next() {
                    Some(b't') => v.push(b'\t'),
                    Some(b'n') => v.push(b'\n'),
                    Some(b'r') => v.push(b'\r'),
                    Some(b'0') => v.push(0),
                    Some(&o) => v.push(o),
                    None => v.push(b'\\'),
                }
            } else {
                v.push(b);
            }
        }
        fields.push(Some(v));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_hard_bytes() {
        let values: Vec<Option<&[u8]>> = vec![
            None,
            Some(b""),
            Some(b"NULL"),
            Some(b"\\N"),
            Some(b"a\tb\nc\r\0d\\"),
            Some(&[0xff, 0xfe, 0x00, 0x80]),
        ];
        let mut out = Vec::new();
        push_row(&mut out, values.iter().copied());
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let line = &out[..out.len() - 1];
        let back = decode_line(line);
        let want: Vec<Option<Vec<u8>>> = values.iter().map(|v| v.map(|b| b.to_vec())).collect();
        assert_eq!(back, want);
    }

    #[test]
    fn values_of_every_kind_are_written_as_the_text_protocol_sends_them() {
        let mut out = Vec::new();
        push_values(
            &mut out,
            &[
                SqlValue::Null,
                SqlValue::Bytes(b"a\tb".to_vec()),
                SqlValue::Int(-5),
                SqlValue::UInt(u64::MAX),
                SqlValue::Double(1.5),
                SqlValue::Date(2024, 1, 2, 3, 4, 5, 6),
                SqlValue::Time(true, 1, 2, 3, 4, 0),
            ],
        );
        assert_eq!(
            out,
            b"\\N\ta\\tb\t-5\t18446744073709551615\t1.5\t2024-01-02 03:04:05.000006\t-026:03:04\n"
        );
    }

    #[test]
    fn null_is_distinct_from_the_word_null() {
        let mut out = Vec::new();
        push_row(&mut out, [None, Some(&b"NULL"[..])]);
        assert_eq!(out, b"\\N\tNULL\n");
    }
}
