//! Reading a server's binary log as a replica does (`COM_BINLOG_DUMP`), without the
//! driver's types in the API: [`BinlogReader`] yields [`BinlogEvent`]s whose parts amsu
//! reads (kind, position, the next file of a rotation, a query's text, a table map's
//! table) are decoded on demand.

use amsu_core::ServerAddr;
use futures_util::StreamExt;
use mysql_async::binlog::events::EventData;
use mysql_async::{BinlogStream, BinlogStreamRequest};

use crate::MysqlError;

/// A stream of a server's binary log events, from a file and position on.
pub struct BinlogReader {
    stream: BinlogStream,
    server: String,
    what: String,
}

impl BinlogReader {
    /// Connects to `addr` and asks for its binary log from `file` at `pos`, as the
    /// replica `server_id` (which must not be one of the server's replicas' ids), without
    /// waiting for new events at the end (the stream ends there). `what` describes the
    /// read in errors.
    pub async fn open(
        addr: &ServerAddr,
        server_id: u32,
        file: &str,
        pos: u64,
        what: &str,
    ) -> Result<BinlogReader, MysqlError> {
        let conn = crate::conn::connect(addr).await?;
        let request = BinlogStreamRequest::new(server_id)
            .with_filename(file.as_bytes())
            .with_pos(pos)
            .with_non_blocking();
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| MysqlError::query(addr.to_string(), what, e))?;
        Ok(BinlogReader {
            stream,
            server: addr.to_string(),
            what: what.to_string(),
        })
    }

    /// The next event, or `None` at the end of the log.
    pub async fn next(&mut self) -> Result<Option<BinlogEvent>, MysqlError> {
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(event)) => Ok(Some(BinlogEvent(event))),
            Some(Err(e)) => Err(MysqlError::query(self.server.clone(), self.what.clone(), e)),
        }
    }

    /// Ends the stream and closes its connection.
    pub async fn close(self) -> Result<(), MysqlError> {
        let (server, what) = (self.server, self.what);
        self.stream
            .close()
            .await
            .map_err(|e| MysqlError::query(server, what, e))
    }
}

/// One binary log event.
pub struct BinlogEvent(mysql_async::binlog::events::Event);

impl BinlogEvent {
    /// The event type code (`2` QUERY, `4` ROTATE, `15` FORMAT_DESCRIPTION, `19`
    /// TABLE_MAP, …).
    pub fn kind(&self) -> u8 {
        self.0.header().event_type_raw()
    }

    /// The position of the next event in the file (`0` for artificial events).
    pub fn log_pos(&self) -> u64 {
        u64::from(self.0.header().log_pos())
    }

    /// For a ROTATE event, the name of the next file.
    pub fn rotate_name(&self) -> Option<String> {
        match self.0.read_data() {
            Ok(Some(EventData::RotateEvent(r))) => Some(r.name().into_owned()),
            _ => None,
        }
    }

    /// For a QUERY event, the statement's text.
    pub fn query(&self) -> Option<String> {
        match self.0.read_data() {
            Ok(Some(EventData::QueryEvent(q))) => Some(q.query().into_owned()),
            _ => None,
        }
    }

    /// For a TABLE_MAP event, the table's database and name.
    pub fn table_map(&self) -> Option<(String, String)> {
        match self.0.read_data() {
            Ok(Some(EventData::TableMapEvent(t))) => {
                Some((t.database_name().into_owned(), t.table_name().into_owned()))
            }
            _ => None,
        }
    }
}
