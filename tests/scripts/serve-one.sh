#!/bin/bash
# Resident memory of one node serving a filled directory: after its start and a status.
# (issue 28, docs/benchmarks.md "one copy of the held ids"). Fill SRC first:
#   target/release/bench --fill /tmp/li/f1m 1000000
# Then: BIN=$PWD/target/release/aidmesh SRC=/tmp/li/f1m D=/tmp/li/n1m tests/scripts/serve-one.sh
set -e
BIN=${BIN:-$PWD/target/release/aidmesh}
: "${SRC:?set SRC to a filled node directory}" "${D:?set D to a scratch directory}"
rm -rf $D; cp -r $SRC $D; rm -f $D/api.addr
AIDMESH_LOG=warn $BIN --data-dir $D up --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --no-mdns --no-beacon --sync-every 10m >$D/out.log 2>&1 </dev/null &
PA=$!
t0=$(date +%s.%N)
for i in $(seq 1 30000); do [ -s $D/api.addr ] && curl -sf http://$(cat $D/api.addr)/api/v1/status >/dev/null && break; sleep 0.02; done
t1=$(date +%s.%N)
A=http://$(cat $D/api.addr)
sleep 3
rss() { grep -E '^(VmRSS|VmHWM)' /proc/$1/status | awk '{printf "%s %.1f MB  ", $1, $2/1024}'; echo; }
echo "load $(cut -d' ' -f1-3 /proc/loadavg); api after $(echo "$t1 - $t0" | bc) s"
echo -n "after start and a status: "; rss $PA
curl -s $A/api/v1/status | python3 -c 'import json,sys; s=json.load(sys.stdin); print("events", s.get("events"), "digest", s.get("digest"))'
kill -INT $PA; wait $PA || true
