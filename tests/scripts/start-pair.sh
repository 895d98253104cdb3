#!/bin/bash
# Resident memory of nodes of several builds started in turn on one filled directory
# (issue 28, docs/benchmarks.md): each start follows a clean stop (so it reads the start
# file); VmRSS 3 s after the API answers and a second status, then after a board.
# Fill first: target/release/bench --fill /tmp/d100k 100000
# Then: BINS="/tmp/aidmesh-old /tmp/aidmesh-new" tests/scripts/start-pair.sh /tmp/d100k 5
D=${1:?a filled node directory}; R=${2:-5}
: "${BINS:?set BINS to the aidmesh binaries to compare}"
api=127.0.0.1:47621
one() {
  $1 --data-dir "$D" up --listen /ip4/127.0.0.1/tcp/0 --api $api --no-mdns --no-beacon >"$D/out.log" 2>&1 </dev/null &
  P=$!
  for _ in $(seq 1 900); do curl -sf -o /dev/null http://$api/api/v1/status && break; sleep 0.1; done
  if ! curl -sf -o /dev/null http://$api/api/v1/status; then
    echo "$1: no API on $api after 90 s (its log: $D/out.log)" >&2
    kill $P 2>/dev/null; exit 1
  fi
  sleep 2; curl -sf -o /dev/null http://$api/api/v1/status; sleep 1
  a=$(awk '/VmRSS/{print $2}' /proc/$P/status)
  curl -sf -o /dev/null http://$api/api/v1/board; sleep 1
  b=$(awk '/VmRSS/{print $2}' /proc/$P/status)
  kill -INT $P; wait $P
  echo "$1: after start and a status ${a} kB, after a board ${b} kB"
}
one "${BINS%% *}" >/dev/null   # a first start leaves a start file for the rest
for _ in $(seq 1 "$R"); do for b in $BINS; do one "$b"; done; done
