#!/usr/bin/env bash
# Install (Debian's redis-server) and start a local Redis on 127.0.0.1:6379 unless one already answers.
set -euo pipefail

PORT="${REDIS_PORT:-6379}"

answers() {
    if command -v redis-cli >/dev/null 2>&1; then
        redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG
    else
        python3 - "$PORT" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
    fi
}

if answers; then
    echo "redis: already answering on 127.0.0.1:$PORT"
    exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

# No persistence: tests and CI only need a live server; --daemonize keeps it running after this script.
redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --daemonize yes \
    --logfile /tmp/redis-ci.log

for _ in $(seq 1 50); do
    if answers; then
        echo "redis: started on 127.0.0.1:$PORT"
        exit 0
    fi
    sleep 0.1
done
echo "redis: failed to start on 127.0.0.1:$PORT (see /tmp/redis-ci.log)" >&2
exit 1
