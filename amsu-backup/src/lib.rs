//! amsu-backup
