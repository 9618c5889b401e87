#!/usr/bin/env bash
# Image to a one-node Garage vs the same image to a local directory, like for like: one
# sandbox master backed up with the same image settings both ways — `--compress none` to
# DIR and to s3://, then `--compress zstd` to DIR and to s3:// (zstd is what `auto`
# chooses for s3://) — each timed, with its peak RSS. Reported per run: the image's MB
# (the manifest's file sizes), the data rate (the dump's row bytes per second: the same
# work whatever the compression), the image rate (image MB/s in total) and MB/s per
# stream (s3: the JSON report's `upload.mb_per_s_per_stream`; DIR: the image rate over
# the --threads writers), and s3 as a share of DIR with the same settings. Chunks are
# streamed to the store as they are written (manifest last).
# Usage: bash benches/s3_bench.sh [ROWS] [AMSU] [CHUNK_SIZE] [REPS]
# (CHUNK_SIZE, e.g. 8M, is passed as --chunk-size to every run, default amsu's 32M;
# REPS runs of each, default 1, the fastest is reported; ZSTD_LEVEL=N in the environment
# passes --zstd-level N to the zstd runs, default amsu's automatic level;
# GARAGE_COMPRESSION='"none"' turns off the store's own block compression, default Garage's 1.)
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
compression_level = ${GARAGE_COMPRESSION:-1}
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
threads=2
reps=${4:-1}
s3flags=(--s3-endpoint "http://127.0.0.1:$s3" --s3-region garage --s3-path-style --s3-credentials-file "$work/creds")
# run NAME OUT ARGS…: one backup; its wall seconds and peak RSS go to $work/NAME.times,
# its JSON lines to $work/NAME.json.
run() {
  local name=$1 out=$2 t0 t1 to
  shift 2
  for ((i = 1; i <= reps; i++)); do
    # A fresh directory or prefix each time (a streamed upload skips what is there).
    rm -rf "$work/img"
    to=$out
    [[ $out == s3://* ]] && to=$out-$i
    t0=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$work/rss" "$amsu" backup --master "$m" --threads $threads --json $chunk --out "$to" "$@" >"$work/$name.$i.json"
    t1=$(date +%s.%N)
    echo "$t0 $t1 $(cat "$work/rss") $i" >>"$work/$name.times"
  done
}
level=()
[[ -n ${ZSTD_LEVEL:-} ]] && level=(--zstd-level "$ZSTD_LEVEL")
run dir-none "$work/img" --compress none
run s3-none s3://bench/img-none --compress none "${s3flags[@]}"
run dir-zstd "$work/img" --compress zstd "${level[@]}"
run s3-zstd s3://bench/img-zstd --compress zstd "${level[@]}" "${s3flags[@]}"
python3 - "$work" "$threads" "$reps" <<'PY'
import json, sys
work, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def best(name):
    runs = [l.split() for l in open(f"{work}/{name}.times")]
    t0, t1, rss, i = min(runs, key=lambda r: float(r[1]) - float(r[0]))
    lines = [json.loads(l) for l in open(f"{work}/{name}.{i}.json") if l.strip()]
    m = next(l for l in lines if l.get("event") == "manifest")
    return float(t1) - float(t0), int(rss) / 1024, m
print(f"threads {threads}, best of {reps}")
lv = json.loads(next(l for l in open(f"{work}/s3-zstd.1.json") if '"event":"manifest"' in l))["upload"]["compression"]["level"]
print(f"zstd level {lv}")
for c in ("none", "zstd"):
    res = {}
    for where in ("dir", "s3"):
        secs, rss, m = best(f"{where}-{c}")
        img = sum(f["size"] for f in m["manifest"]["files"]) / 1e6
        data = m["report"]["bytes"] / 1e6
        u = m.get("upload")
        total = img / secs
        per = u["mb_per_s_per_stream"] if u else total / threads
        streams = u["streams"] if u else threads
        res[where] = secs
        extra = ""
        if u:
            extra = f"; upload {u['mb_per_s']:.1f} MB/s, ended {u.get('seconds_after_dump', 0):.2f} s after the dump"
        print(f"--compress {c:4} --out {'DIR ' if where == 'dir' else 's3://'}: {secs:6.2f} s, image {img:6.1f} MB, "
              f"data {data / secs:6.1f} MB/s, image {total:6.1f} MB/s in total, {per:6.1f} MB/s per stream "
              f"({streams} streams), peak RSS {rss:5.1f} MiB{extra}")
    print(f"  s3 / DIR with --compress {c}: {100 * res['dir'] / res['s3']:.0f} % of local")
PY
