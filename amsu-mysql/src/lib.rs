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
pub mod statement;
pub mod verify;

pub(crate) use error::server_code;
pub use conn::{RowStream, Session};
pub use error::{codes, MysqlError};
pub use row::{Row, SqlValue};
pub use server::{
    binlog_position, identity, probe, replication_status, MysqlMaster, MysqlReplica,
    SYSTEM_DATABASES,
};
