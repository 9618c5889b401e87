//! Rows and values as amsu reads them: the driver's types stay inside this crate.
//!
//! A [`Row`] holds its values ([`SqlValue`], taken from the driver's values by move: no
//! byte is copied) and the column names of its result set, shared by every row of it.

use std::borrow::Cow;
use std::sync::Arc;

/// One value of a row, as the server sent it.
///
/// The text protocol (every query amsu sends as text) sends every non-NULL value as
/// [`SqlValue::Bytes`]; the other variants only come from the binary protocol.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// The value's bytes (text, numbers and dates as text, binary data).
    Bytes(Vec<u8>),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A single-precision float.
    Float(f32),
    /// A double-precision float.
    Double(f64),
    /// A date or date-time: year, month, day, hour, minutes, seconds, microseconds.
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// A time: is negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
}

impl SqlValue {
    /// True for SQL `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, SqlValue::Null)
    }

    /// The value's bytes as the server sent them in the text protocol: `None` for NULL,
    /// the bytes for [`SqlValue::Bytes`], the SQL literal without quotes otherwise.
    pub fn bytes(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            SqlValue::Null => None,
            SqlValue::Bytes(b) => Some(Cow::Borrowed(b)),
            other => Some(Cow::Owned(other.literal().into_bytes())),
        }
    }

    /// The value as text (`None` for NULL; bytes that are not UTF-8 are replaced).
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            SqlValue::Null => None,
            SqlValue::Bytes(b) => Some(String::from_utf8_lossy(b)),
            other => Some(Cow::Owned(other.literal())),
        }
    }

    /// A non-bytes value as its SQL literal without quotes, as the driver writes it.
    fn literal(&self) -> String {
        let v = match *self {
            SqlValue::Null => mysql_async::Value::NULL,
            SqlValue::Bytes(ref b) => return String::from_utf8_lossy(b).into_owned(),
            SqlValue::Int(x) => mysql_async::Value::Int(x),
            SqlValue::UInt(x) => mysql_async::Value::UInt(x),
            SqlValue::Float(x) => mysql_async::Value::Float(x),
            SqlValue::Double(x) => mysql_async::Value::Double(x),
            SqlValue::Date(y, m, d, h, i, s, u) => mysql_async::Value::Date(y, m, d, h, i, s, u),
            SqlValue::Time(n, d, h, i, s, u) => mysql_async::Value::Time(n, d, h, i, s, u),
        };
        v.as_sql(true).trim_matches('\'').to_string()
    }
}

impl From<mysql_async::Value> for SqlValue {
    fn from(v: mysql_async::Value) -> Self {
        use mysql_async::Value as V;
        match v {
            V::NULL => SqlValue::Null,
            V::Bytes(b) => SqlValue::Bytes(b),
            V::Int(x) => SqlValue::Int(x),
            V::UInt(x) => SqlValue::UInt(x),
            V::Float(x) => SqlValue::Float(x),
            V::Double(x) => SqlValue::Double(x),
            V::Date(y, m, d, h, i, s, u) => SqlValue::Date(y, m, d, h, i, s, u),
            V::Time(n, d, h, i, s, u) => SqlValue::Time(n, d, h, i, s, u),
        }
    }
}

/// A driver row's values, by move.
pub(crate) fn values_of(row: mysql_async::Row) -> Vec<SqlValue> {
    row.unwrap_raw()
        .into_iter()
        .map(|v| v.map_or(SqlValue::Null, SqlValue::from))
        .collect()
}

/// One row of a result set: its values and the result set's column names.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<SqlValue>,
}

impl Row {
    /// A row of `values` under `columns` (for tests and fakes; the session builds rows
    /// from the server's answers).
    pub fn new(columns: Arc<[String]>, values: Vec<SqlValue>) -> Row {
        Row { columns, values }
    }

    /// A row of text values (`None` for NULL) under the column names `columns`.
    pub fn from_texts<'a>(
        columns: &[&str],
        values: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Row {
        Row {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            values: values
                .into_iter()
                .map(|v| v.map_or(SqlValue::Null, |t| SqlValue::Bytes(t.as_bytes().to_vec())))
                .collect(),
        }
    }

    /// The driver's rows as amsu rows, the column names shared.
    pub(crate) fn from_driver(rows: Vec<mysql_async::Row>) -> Vec<Row> {
        let Some(first) = rows.first() else {
            return Vec::new();
        };
        let columns: Arc<[String]> = first
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        rows.into_iter()
            .map(|r| Row {
                columns: columns.clone(),
                values: values_of(r),
            })
            .collect()
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a row without values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The column names of the row's result set.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values.
    pub fn values(&self) -> &[SqlValue] {
        &self.values
    }

    /// The values, by move.
    pub fn into_values(self) -> Vec<SqlValue> {
        self.values
    }

    /// The value at `index`.
    pub fn value(&self, index: usize) -> Option<&SqlValue> {
        self.values.get(index)
    }

    /// The index of column `name` (ASCII case-insensitive).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The value at `index` as text: `None` for NULL or no such column.
    pub fn text(&self, index: usize) -> Option<String> {
        self.value(index)?.text().map(Cow::into_owned)
    }

    /// The value at `index` as text, or an empty string for NULL or no such column.
    pub fn text_or_empty(&self, index: usize) -> String {
        self.text(index).unwrap_or_default()
    }

    /// The value of column `name` (ASCII case-insensitive) as text: `None` for NULL or
    /// no such column.
    pub fn get_text(&self, name: &str) -> Option<String> {
        self.text(self.index_of(name)?)
    }

    /// The value at `index` parsed from its text (`None` for NULL, no such column or
    /// text that does not parse).
    pub fn parse<T: std::str::FromStr>(&self, index: usize) -> Option<T> {
        self.value(index)?.text()?.trim().parse().ok()
    }

    /// The value at `index` as an unsigned integer (see [`Row::parse`]).
    pub fn u64(&self, index: usize) -> Option<u64> {
        self.parse(index)
    }

    /// The value at `index` as a signed integer (see [`Row::parse`]).
    pub fn i64(&self, index: usize) -> Option<i64> {
        self.parse(index)
    }

    /// The value at `index` as a boolean: `1`/`ON`/`YES`/`TRUE` are true, `0`/`OFF`/
    /// `NO`/`FALSE` false (ASCII case-insensitive), anything else `None`.
    pub fn bool(&self, index: usize) -> Option<bool> {
        let t = self.value(index)?.text()?;
        match t.trim().to_ascii_uppercase().as_str() {
            "1" | "ON" | "YES" | "TRUE" => Some(true),
            "0" | "OFF" | "NO" | "FALSE" => Some(false),
            _ => None,
        }
    }

    /// The row as (column name, text value) pairs.
    pub fn texts(&self) -> Vec<(String, Option<String>)> {
        self.columns
            .iter()
            .zip(&self.values)
            .map(|(c, v)| (c.clone(), v.text().map(Cow::into_owned)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_by_move_and_read_as_text() {
        let bytes = b"abc".to_vec();
        let ptr = bytes.as_ptr();
        let v = SqlValue::from(mysql_async::Value::Bytes(bytes));
        match &v {
            SqlValue::Bytes(b) => assert_eq!(b.as_ptr(), ptr, "the bytes moved, not copied"),
            other => panic!("{other:?}"),
        }
        assert_eq!(v.text().as_deref(), Some("abc"));
        assert_eq!(SqlValue::Null.text(), None);
        assert_eq!(SqlValue::Int(-3).text().as_deref(), Some("-3"));
        assert_eq!(
            SqlValue::Date(2024, 2, 29, 0, 0, 0, 0).text().as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            SqlValue::Time(true, 1, 2, 3, 4, 5).bytes().as_deref(),
            Some(&b"-026:03:04.000005"[..])
        );
    }

    #[test]
    fn row_getters() {
        let r = Row::from_texts(
            &["Name", "n", "flag", "nothing"],
            [Some("x"), Some(" 42 "), Some("ON"), None],
        );
        assert_eq!(r.len(), 4);
        assert_eq!(r.get_text("name").as_deref(), Some("x"));
        assert_eq!(r.u64(1), Some(42));
        assert_eq!(r.i64(1), Some(42));
        assert_eq!(r.bool(2), Some(true));
        assert_eq!(r.text(3), None);
        assert_eq!(r.text(9), None);
        assert_eq!(r.text_or_empty(3), "");
        assert_eq!(r.texts()[0], ("Name".to_string(), Some("x".to_string())));
    }
}
