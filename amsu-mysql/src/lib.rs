//! amsu-mysql
