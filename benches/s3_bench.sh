#!/usr/bin/env bash
# Image to a one-node Garage vs the same image to a local directory: `amsu backup` of one
# sandbox master to DIR and to s3://, image MB/s of each, and the upload's MB/s in total
# and per stream from the JSON report. Chunks are streamed to the store as they are
# written (manifest last). Usage: bash benches/s3_bench.sh [ROWS] [AMSU] [CHUNK_SIZE]
# (CHUNK_SIZE, e.g. 8M, is passed as --chunk-size to both runs; default: amsu's 32M).
set -euo pipefail
rows=${1:-1000000}
amsu=${2:-target/release/amsu}
chunk=${3:+--chunk-size $3}
garage=${AMSU_GARAGE_BIN:-$(command -v garage || bash ../shared/tools/garage.sh)}
work=$(mktemp -d /tmp/amsu-s3-bench.XXXXXX)
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
rpc=$(port); s3=$(port)
cat >"$work/garage.toml" <<TOML
metadata_dir = "$work/meta"
data_dir = "$work/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"
TOML
"$garage" -c "$work/garage.toml" server >"$work/garage.log" 2>&1 &
gpid=$!
export AMSU_SANDBOX_HOME=$work/sandboxes
cleanup() { kill "$gpid" 2>/dev/null || true; "$amsu" sandbox stop bench --remove >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
sleep 2
g() { "$garage" -c "$work/garage.toml" "$@"; }
id=$(g node id -q); g layout assign -z dc1 -c 10G "${id%@*}" >/dev/null; g layout apply --version 1 >/dev/null
key=$(g key create bench); g bucket create bench >/dev/null
g bucket allow --read --write --owner bench --key bench >/dev/null
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$(sed -n 's/^Key ID: *//p' <<<"$key")" "$(sed -n 's/^Secret key: *//p' <<<"$key")" >"$work/creds"
chmod 600 "$work/creds"
out=$("$amsu" sandbox deploy bench)
mport=$(grep -o '127.0.0.1:[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
m="mysql://root@127.0.0.1:$mport"
mariadb -h127.0.0.1 -P"$mport" -uroot -e "CREATE DATABASE b; CREATE TABLE b.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB; INSERT INTO b.t SELECT seq, CONCAT(seq, REPEAT(MD5(seq), 4)) FROM b.seq_1_to_$rows;"
run() { local t0 t1; t0=$(date +%s.%N); "$amsu" backup --master "$m" --threads 2 --json $chunk "$@" >"$work/out.json"; t1=$(date +%s.%N); echo "$t0 $t1"; }
read -r a0 a1 < <(run --out "$work/img")
bytes=$(du -sb "$work/img" | cut -f1)
read -r b0 b1 < <(run --out s3://bench/img --s3-endpoint "http://127.0.0.1:$s3" --s3-region garage --s3-path-style --s3-credentials-file "$work/creds")
python3 - "$bytes" "$a0" "$a1" "$b0" "$b1" "$work/out.json" <<'PY'
import json, sys
b, a0, a1, b0, b1 = int(sys.argv[1]), *map(float, sys.argv[2:6])
u = next(json.loads(l) for l in open(sys.argv[6]).read().splitlines() if '"event":"manifest"' in l)["upload"]
la, sa = a1 - a0, b1 - b0
print(f"image: {b/1e6:.1f} MB")
print(f"backup --out DIR : {la:.2f} s, {b/1e6/la:.1f} MB/s")
print(f"backup --out s3://: {sa:.2f} s, {b/1e6/sa:.1f} MB/s ({100*la/sa:.0f} % of local)")
print(f"  upload (streamed while the dump runs): {u['mb_per_s']:.1f} MB/s in total, {u['mb_per_s_per_stream']:.1f} MB/s per stream, {u['streams']} streams, {u.get('seconds_after_dump', 0):.2f} s after the dump ended")
PY
