//! amsu-transfer
