//! # amsu-mysql
//!
//! The MySQL/MariaDB side of amsu.

#![deny(missing_docs)]

pub mod binlog;
pub mod checks;
pub mod conn;
pub mod dialect;
mod error;
pub mod grants;
pub mod option_file;
pub mod owned;
pub mod plan_sql;
pub mod programs;
pub mod quote;
pub mod replica_config;
mod row;
pub mod sandbox;
mod server;
mod sql_session;
pub mod statement;
#[cfg(any(test, feature = "mocks"))]
pub mod testing;
pub mod verify;

pub use conn::{RowStream, Session};
pub(crate) use error::server_code;
pub use error::{codes, MysqlError};
pub use row::{Row, SqlValue};
pub use server::{
    binlog_position, identity, probe, replication_status, MysqlMaster, MysqlReplica,
    SYSTEM_DATABASES,
};
pub use sql_session::SqlSession;
