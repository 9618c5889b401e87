#!/bin/bash
# Where the master's worst second of write latency comes from during `amsu setup --method
# physical`: one timeline of the write load's per-second latency, amsu's JSON events and
# the kernel's dirty/writeback page counts, all stamped with the same clock.
#
#   bash benches/physical_latency.sh [TABLE_ROWS] [AMSU] [EXTRA SETUP FLAGS...]
#
# TABLE_ROWS: rows in each of 8 sysbench tables (default 250000, ~0.5 GB); AMSU: the amsu
# binary (default target/release/amsu); extra flags go to `amsu setup` (for example
# `--max-rate 50M`). Needs sysbench and mariadb-backup. Sandboxes under /tmp/plat-sb; the
# timeline is written to /tmp/plat/timeline.txt and its worst seconds are printed.
set -euo pipefail
ROWS=${1:-250000}
A=${2:-$(cd "$(dirname "$0")/.." && pwd)/target/release/amsu}
shift 2 || shift $#
export AMSU_SANDBOX_HOME=/tmp/plat-sb
OUT=/tmp/plat
rm -rf "$AMSU_SANDBOX_HOME" "$OUT"
mkdir -p "$OUT"
opts="--server-option=--innodb-buffer-pool-size=512M --server-option=--innodb-log-file-size=256M"
$A sandbox deploy pm --server-id 1 $opts >/dev/null
$A sandbox deploy pr --server-id 2 $opts >/dev/null
port() { $A sandbox list | awk -v n="$1" '$1==n{print $2}' | sed 's/.*://'; }
PM=$(port pm)
PR=$(port pr)
SYS="sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=$PM --mysql-user=root --mysql-db=sbtest --tables=8 --table-size=$ROWS"
mariadb --no-defaults -uroot -h127.0.0.1 -P"$PM" -e "create database sbtest"
$SYS --threads=2 prepare >/dev/null
# The prepared data (and its binary log) out of the page cache's dirty pages first: their
# writeback would otherwise land in the middle of the measurement.
sync
while [ "$(awk '/^Dirty:/{print $2}' /proc/meminfo)" -gt 51200 ]; do sleep 1; done

# The replica's stop/start commands, as a service manager would give them.
RPID=$(cat "$AMSU_SANDBOX_HOME"/pr/*.pid 2>/dev/null || pgrep -f "datadir=$AMSU_SANDBOX_HOME/pr/data" | head -1)
mapfile -d '' ARGS < /proc/"$RPID"/cmdline
PIDFILE=$(printf '%s\n' "${ARGS[@]}" | sed -n 's/^--pid-file=//p')
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
START="setsid"
for a in "${ARGS[@]}"; do START+=" $(q "$a")"; done
START+=" --skip-slave-start </dev/null >/dev/null 2>&1 &"
STOP="P=\$(cat $(q "$PIDFILE")) && kill -TERM \"\$P\" && while [ -e /proc/\$P ] && ! grep -q ') Z' /proc/\$P/stat; do sleep 0.1; done"

stamp() { while IFS= read -r l; do printf '%s %s %s\n' "$(date +%s.%N)" "$1" "$l"; done; }
# sysbench by its own PID (it ignores a closed pipe and would run on).
mkfifo "$OUT/load.fifo"
$SYS --threads=2 --rate=100 --time=0 --report-interval=1 --percentile=100 run > "$OUT/load.fifo" 2>/dev/null &
LOADPID=$!
grep --line-buffered '^\[' < "$OUT/load.fifo" | stamp load >> "$OUT/raw" &
( while :; do
    printf '%s mem %s\n' "$(date +%s.%N)" "$(awk '/^(Dirty|Writeback):/{printf "%s=%dMB ", $1, $2/1024}' /proc/meminfo)"
    sleep 0.5
  done >> "$OUT/raw" ) &
MEMPID=$!
sleep 10
echo "$(date +%s.%N) amsu START" >> "$OUT/raw"
AMSU_REPL_PASSWORD=bench-repl $A setup --master "mysql://root@127.0.0.1:$PM" --replica "mysql://root@127.0.0.1:$PR" \
  --method physical --yes --json --replica-stop-command "$STOP" --replica-start-command "$START" "$@" \
  2>"$OUT/amsu.err" | stamp amsu >> "$OUT/raw" || echo "amsu setup failed: see $OUT/amsu.err"
echo "$(date +%s.%N) amsu END" >> "$OUT/raw"
sleep 5
kill "$LOADPID" "$MEMPID" 2>/dev/null || true
sleep 1
sort -n "$OUT/raw" | awk 'NR==1{t0=$1} {printf "%8.2f %s\n", $1-t0, substr($0, index($0,$2))}' > "$OUT/timeline.txt"
echo "== amsu events (seconds from the first line) =="
grep ' amsu ' "$OUT/timeline.txt" | grep -v '"progress"' | cut -c1-160 || true
echo "== the five worst seconds of the write load (max latency, ms) =="
grep ' load ' "$OUT/timeline.txt" | awk '{for(i=1;i<=NF;i++) if($i=="(ms,100%):") print $(i+1), $1}' | sort -rn | head -5
echo "timeline: $OUT/timeline.txt"
# The replica runs from the command above now (not amsu's sandbox child): stop it by its pid file.
P=$(cat "$PIDFILE" 2>/dev/null || true)
[ -n "$P" ] && kill -TERM "$P" 2>/dev/null || true
$A sandbox stop pm --remove >/dev/null 2>&1 || true
$A sandbox stop pr --remove >/dev/null 2>&1 || true
