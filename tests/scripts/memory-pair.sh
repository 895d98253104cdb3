#!/bin/bash
# Resident memory of a node holding N events, after its start and after an in-sync
# session with a second node holding the same events (issue 14; docs/benchmarks.md).
# Fill the two directories first (same events, own identities):
#   target/release/bench --fill $D/a0 100000 $D/b0
# Then: D=/tmp/mem tests/scripts/memory-pair.sh   (from the workspace root)
# PREFIX="heaptrack -o $D/ht" runs node a under heaptrack; HOLD=1 leaves both running.
BIN=${BIN:-$PWD/target/release/aidmesh}
D=${D:-/tmp/mem}
rm -rf $D/a $D/b; cp -r $D/a0 $D/a; cp -r $D/b0 $D/b
rss() { grep -E '^(VmRSS|VmHWM)' /proc/$1/status | awk '{printf "%s %.1f MB  ", $1, $2/1024}'; echo; }
startnode() {
  rm -f $1/api.addr
  P=; [ "$1" = $D/a ] && P=$PREFIX; AIDMESH_LOG=${LOG:-warn} $P $BIN --data-dir $1 up --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --no-mdns --no-beacon --sync-every 10m $EXTRA >$1/out.log 2>&1 </dev/null &
  echo $! > $1/pid
}
waitapi() { for i in $(seq 1 6000); do [ -s $1/api.addr ] && curl -sf http://$(cat $1/api.addr)/api/v1/status >/dev/null && return; sleep 0.02; done; echo "no api $1"; exit 1; }
synced() { curl -s $1/api/v1/status | python3 -c 'import json,sys; s=json.load(sys.stdin); l=s.get("peer_list") or []; print(1 if l and all(isinstance(p.get("last_sync_ms"),int) for p in l) else 0)'; }
startnode $D/a; waitapi $D/a; PA=$(pgrep -f "data-dir $D/a up" | tail -1)
A=http://$(cat $D/a/api.addr)
sleep ${SETTLE:-3}
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo -n "after start: "; rss $PA
startnode $D/b; waitapi $D/b; PB=$(pgrep -f "data-dir $D/b up" | tail -1)
B=http://$(cat $D/b/api.addr)
ADDR=$(curl -s $A/api/v1/status | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["listen"][0]+"/p2p/"+s["peer_id"])')
curl -s -XPOST -H 'content-type: application/json' -d "{\"addr\":\"$ADDR\"}" $B/api/v1/peers >/dev/null
for i in $(seq 1 1200); do
  ok="$(synced $A)$(synced $B)"
  [ "$ok" = 11 ] && break; sleep 0.1; done
echo "synced ($ok) after ~$i polls"
echo -n "after sync: "; rss $PA
sleep ${SETTLE2:-3}
echo -n "after sync +3s: "; rss $PA
if [ -n "$HOLD" ]; then echo "holding; PA=$PA PB=$PB"; exit 0; fi
kill -INT $PA $PB; for i in $(seq 100); do kill -0 $PA 2>/dev/null || kill -0 $PB 2>/dev/null || break; sleep 0.1; done
echo done
