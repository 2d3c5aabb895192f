#!/usr/bin/env bash
# Web app + Celery worker with embedded beat, together; Ctrl-C stops all of them.
#
# The broker is REDIS_URL when set, otherwise kombu's filesystem transport under var/ (no
# server needed); beat keeps its schedule in var/celerybeat-schedule (both from settings, so
# CRM_KEYS_VAR_DIR moves them). HOST and PORT change where the web app listens.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
pids=()

alive() {
  local pid
  for pid in "${pids[@]}"; do
    # Each child leads its own process group: it and everything it started (the worker's pool
    # and beat process, runserver's threads) are stopped together.
    if kill -0 -- "-$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}

cleanup() {
  trap - INT TERM EXIT
  echo "Stopping web app, worker and beat..."
  # TERM to each leader: runserver exits; the Celery worker does a warm shutdown (finishes the
  # task in hand, acks it, stops beat and its own pool). Whatever is left of either process
  # group after 20 s is killed.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 200); do
    alive || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null
}
trap cleanup INT TERM EXIT

# setsid: each child gets its own process group, so cleanup can signal the whole group; the
# terminal's Ctrl-C reaches this script, whose trap stops them (background children of a
# non-interactive shell would ignore SIGINT anyway).
setsid "$BIN/celery" -A crm_keys worker --beat --loglevel=INFO --concurrency=1 &
pids+=($!)

echo "Serving http://$HOST:$PORT/admin/ and http://$HOST:$PORT/api/v1/ (Ctrl-C to stop)"
setsid "$BIN/python" manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)

# Whichever stops first (Ctrl-C, or one of them crashing) stops the other.
wait -n "${pids[@]}"
