#!/usr/bin/env bash
# Installs the Debian packages amsu's demo and tests need, when they are missing.
# Safe to run again: installs nothing when everything is there.
set -euo pipefail

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v mariadb-backup >/dev/null 2>&1 || need+=(mariadb-backup)
[ -x /usr/sbin/pure-ftpd ] || need+=(pure-ftpd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v setfacl >/dev/null 2>&1 || need+=(acl)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Do not start the packaged services: amsu runs its own sandbox servers.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo (Rust 1.89 or newer) is required; install it with rustup (https://rustup.rs)" >&2
  exit 1
fi

# Garage (S3-compatible object store) for the S3 image tests. A prebuilt binary from
# ../shared/tools/garage.sh when that folder is beside the repository (it saves the ~15
# minutes a build takes), else `cargo install` once per machine; reused when present.
GARAGE_VERSION=2.5.0
if ! command -v garage >/dev/null 2>&1 && [ -z "${AMSU_GARAGE_BIN:-}" ]; then
  repo=$(cd "$(dirname "$0")/.." && pwd)
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  if [ -f "$repo/../shared/tools/garage.sh" ]; then
    bin=$(bash "$repo/../shared/tools/garage.sh")
    echo "installing garage from $bin"
    $SUDO install -m 0755 "$bin" /usr/local/bin/garage
  else
    echo "building garage $GARAGE_VERSION (cargo install, once per machine)"
    cargo install garage --locked --version "$GARAGE_VERSION"
  fi
fi
