#!/bin/bash
# Profiles one amsu logical setup (8 × 250k sysbench rows, ~0.5 GB) system-wide with
# perf: how the two CPUs split between the replica, amsu and the master, and the
# replica's and master's top symbols. Needs perf, sysbench and a release build
# (cargo build --release -p amsu-cli). Uses sandboxes under /tmp/prof-sb.
set -e
export AMSU_SANDBOX_HOME=/tmp/prof-sb
A="$(cd "$(dirname "$0")/.." && pwd)/target/release/amsu"
rm -rf /tmp/prof-sb
opts="--server-option=--innodb-buffer-pool-size=512M --server-option=--innodb-log-file-size=256M"
$A sandbox deploy pm --server-id 1 $opts >/dev/null
$A sandbox deploy pr --server-id 2 $opts >/dev/null
PM=$($A sandbox list | awk '$1=="pm"{print $2}' | sed 's/.*://')
PR=$($A sandbox list | awk '$1=="pr"{print $2}' | sed 's/.*://')
mariadb --no-defaults -uroot -h127.0.0.1 -P$PM -e "create database sbtest"
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=$PM --mysql-user=root --mysql-db=sbtest --tables=8 --table-size=250000 --threads=2 prepare >/dev/null
sleep 30
MPID=$(pgrep -f "datadir=/tmp/prof-sb/pm/data" | head -1)
RPID=$(pgrep -f "datadir=/tmp/prof-sb/pr/data" | head -1)
echo "master pid $MPID replica pid $RPID"
perf record -a -g -F 499 -o /tmp/perf.data >/dev/null 2>&1 &
PP=$!
sleep 1
/usr/bin/time -f "amsu wall %e s, cpu %U+%S s" $A setup --master mysql://root@127.0.0.1:$PM --replica mysql://root@127.0.0.1:$PR --yes --threads 2 --json > /tmp/prof-setup.json
kill -INT $PP; wait $PP || true
grep -o '"step":"copy_data","millis":[0-9]*' /tmp/prof-setup.json
perf script -i /tmp/perf.data -F pid 2>/dev/null | awk '{c[$1]++; n++} END {for (p in c) printf "pid %s: %.1f%% of samples\n", p, 100*c[p]/n}' | sort -t: -k2 -rn | head -8
for p in $RPID $MPID; do
  echo "== top symbols of pid $p =="
  perf report -i /tmp/perf.data --no-children --pid $p --sort symbol --stdio -g none 2>/dev/null | grep -v "^#" | grep -v "^$" | head -25
done
$A sandbox stop pm --remove; $A sandbox stop pr --remove
