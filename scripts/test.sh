#!/usr/bin/env bash
# Runs every test: unit tests, and the integration tests on real MariaDB servers and a
# real FTP server started on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build -p amsu-cli
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
# Every public item documented, no broken or private intra-doc link.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
