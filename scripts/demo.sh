#!/usr/bin/env bash
# The main job: a master and a replica sandbox on this machine, a sample dataset and a
# live write load, `amsu setup`, and a data comparison at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build -q -p amsu-cli
"${CARGO_TARGET_DIR:-target}/debug/amsu" demo "$@"
