//! Benchmarks of amsu against mariadb-dump, mydumper and mariadb-backup (see BENCHMARKS.md).
