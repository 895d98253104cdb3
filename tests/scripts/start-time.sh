#!/usr/bin/env bash
# The start of a node on a filled directory (`bench --fill DIR N`): the time from
# spawning `aidmesh up` until its API answers GET /api/v1/status, and its VmRSS then.
# Stops the node with Ctrl-C (SIGINT) afterwards, so the next start is a clean one, and
# times that stop (which writes the start file since issue 28's start file).
# With KILL=1 it stops it with kill -9 instead (the next start is then an unclean one).
#
#   tests/scripts/start-time.sh DIR [AIDMESH_BINARY]   # default target/release/aidmesh
set -euo pipefail
dir=$1
bin=${2:-target/release/aidmesh}
rm -f "$dir/api.addr"
t0=$(date +%s%N)
AIDMESH_LOG=${AIDMESH_LOG:-warn} "$bin" --data-dir "$dir" up --listen /ip4/127.0.0.1/tcp/0 \
    --api 127.0.0.1:0 --no-mdns --no-beacon --sync-every 10m \
    >/dev/null 2>>"$dir/start-time.log" &
pid=$!
# The API address is written once the API serves; then one request must answer.
# Polled every 5 ms with the shell's own wait (no process started per poll), for at
# most 10 minutes.
exec {nap}<> <(:)
for _ in $(seq 120000); do
    if [ -s "$dir/api.addr" ] && curl -sf -o /dev/null "http://$(cat "$dir/api.addr")/api/v1/status"; then
        t1=$(date +%s%N)
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
        if [ -n "${KILL:-}" ]; then
            kill -9 "$pid"; wait "$pid" || true
            echo "start $(( (t1 - t0) / 1000000 )) ms, VmRSS $(( rss / 1024 )) MB, killed"
            exit 0
        fi
        kill -INT "$pid"
        wait "$pid"
        t2=$(date +%s%N)
        echo "start $(( (t1 - t0) / 1000000 )) ms, VmRSS $(( rss / 1024 )) MB, stop $(( (t2 - t1) / 1000000 )) ms"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "aidmesh exited; see $dir/start-time.log" >&2; exit 1; }
    read -rt 0.005 -u "$nap" || true
done
kill -9 "$pid"
echo "no answer after 10 minutes" >&2
exit 1
