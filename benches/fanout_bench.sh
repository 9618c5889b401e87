#!/usr/bin/env bash
# Fan-out: N replicas seeded from one read of the master vs one replica. Deploys a master
# sandbox with ROWS rows and N empty replica sandboxes, then times
#   1. `amsu setup --replica R1` (one replica, today's default method),
#   2. `amsu setup --replica R1 --spool DIR` (one replica through the spool image),
#   3. `amsu setup --replica R1 … --replica RN --spool DIR` (all N from one read),
# each on freshly redeployed empty replicas, to caught-up replication, with the peak RSS
# of any amsu process (GNU time: the largest of the parent and its children).
# Target (issue 16): run 3 ≤ 1.3 × run 1 for N = 4.
# Usage: bash benches/fanout_bench.sh [ROWS] [N] [AMSU]
set -euo pipefail
rows=${1:-1000000}
n=${2:-4}
amsu=$(realpath "${3:-target/release/amsu}")
work=$(mktemp -d /tmp/amsu-fanout-bench.XXXXXX)
export AMSU_SANDBOX_HOME=$work/sandboxes AMSU_JOURNAL_DIR=$work/journal AMSU_HOME=$work/home
cleanup() {
  for i in $(seq 0 "$n"); do "$amsu" sandbox stop "r$i" --remove >/dev/null 2>&1 || true; done
  "$amsu" sandbox stop m --remove >/dev/null 2>&1 || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
portof() { grep -o '127.0.0.1:[0-9]*' <<<"$1" | head -1 | cut -d: -f2; }
mport=$(portof "$("$amsu" sandbox deploy m --server-id 1)")
m="mysql://root@127.0.0.1:$mport"
mariadb -h127.0.0.1 -P"$mport" -uroot -e "CREATE DATABASE b; CREATE TABLE b.t (id INT PRIMARY KEY, v VARCHAR(200), k INT, KEY(k)) ENGINE=InnoDB; INSERT INTO b.t SELECT seq, CONCAT(seq, REPEAT(MD5(seq), 4)), seq % 1000 FROM b.seq_1_to_$rows; ANALYZE TABLE b.t;" >/dev/null
replicas=()
fresh() { # redeploy replicas 1..$1 empty
  replicas=()
  for i in $(seq 1 "$1"); do
    "$amsu" sandbox stop "r$i" --remove >/dev/null 2>&1 || true
    rm -rf "$AMSU_JOURNAL_DIR"
    replicas+=(--replica "mysql://root@127.0.0.1:$(portof "$("$amsu" sandbox deploy "r$i" --server-id $((i + 1)))")")
  done
}
timed() { # label, args…: prints seconds and peak RSS
  local label=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/rss" "$amsu" setup --master "$m" "${replicas[@]}" --yes --wait-caught-up --threads 2 "$@" >"$work/$label.log" 2>&1 \
    || { echo "$label failed:"; tail -20 "$work/$label.log"; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "import sys; print(f'{sys.argv[1]:<40} {float(sys.argv[3])-float(sys.argv[2]):8.2f} s   peak RSS {int(sys.argv[4])/1024:6.1f} MiB')" "$label" "$t0" "$t1" "$(cat "$work/rss")" | tee -a "$work/results"
}
fresh 1; timed "1 replica (setup)"
fresh 1; timed "1 replica (through the spool)" --spool "$work/spool"
fresh "$n"; timed "$n replicas from one read" --spool "$work/spool"
python3 - "$work/results" "$n" <<'PY'
import re, sys
t = [float(re.search(r"\s([\d.]+) s", l).group(1)) for l in open(sys.argv[1])]
print(f"{sys.argv[2]} replicas / 1 replica (setup): {t[2]/t[0]:.2f}x (target <= 1.3x); / 1 replica through the spool: {t[2]/t[1]:.2f}x")
PY
