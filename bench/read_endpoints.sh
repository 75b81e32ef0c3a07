#!/usr/bin/env sh
# Latency of the three foundation read endpoints on the demo clinic, with wrk (16 connections, 10 s
# each). Usage: bench/read_endpoints.sh DATABASE_URL [PORT]
# The database must be empty or already hold the demo clinic; the script loads it (an upsert).
set -eu
cd "$(dirname "$0")/.."
URL="$1"
# A free port by default: a busy one would silently measure whatever server already listens there.
PORT="${2:-$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
export THERAPY_SCHEDULER_DATABASE_URL="$URL"
export THERAPY_SCHEDULER_RATE_LIMIT_USER=off
export THERAPY_SCHEDULER_LOG_LEVEL=WARNING
CLI=.venv/bin/therapy-scheduler
$CLI demo-data >/dev/null 2>&1
TOKEN="$($CLI token --email admin@demo.brightsteps.example)"
$CLI serve --port "$PORT" >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT INT TERM
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do
  kill -0 $SERVER 2>/dev/null || { echo "server did not start" >&2; exit 1; }
  sleep 0.2
done
sleep 1
kill -0 $SERVER 2>/dev/null || { echo "port $PORT belongs to another server" >&2; exit 1; }
MONDAY="$(date -u -d "last monday" +%F)"
SUNDAY="$(date -u -d "$MONDAY + 6 days" +%F)"
for path in \
  "/get-schedule-data-batch?start_date=$MONDAY&end_date=$SUNDAY" \
  "/get-sessions-optimized" \
  "/get-dropdown-data"; do
  echo "== $path"
  curl -sf -o /dev/null -w "status %{http_code}, %{size_download} bytes\n" \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path"
  wrk -t2 -c16 -d10s --timeout 10s --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path"
done
