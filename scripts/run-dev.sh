#!/usr/bin/env bash
# `make run`: demo data, then the web app and a Celery worker with embedded beat, together.
# The login and the demo keys are printed last, once the worker and the web app are up, so they
# are the last thing on the screen. Ctrl-C stops all of them and exits 0.
#
# The broker is REDIS_URL when set, otherwise kombu's filesystem transport under var/ (no
# server needed); beat keeps its schedule in var/celerybeat-schedule (both from settings, so
# CRM_KEYS_VAR_DIR moves them). HOST and PORT change where the web app listens.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export SITE_URL=${SITE_URL:-http://$HOST:$PORT}
export PYTHONUNBUFFERED=1  # log lines appear in the order they happen
pids=()
state=$(mktemp -d)
export CRM_KEYS_WORKER_READY_FILE="$state/worker-ready"

# Shown once: kept in this shell's memory only (never a file), printed when everything is up.
if ! demo=$("$BIN/python" manage.py seed_demo --site-url "$SITE_URL"); then
  rm -rf "$state"
  exit 1
fi

alive() {
  local pid
  for pid in "${pids[@]}"; do
    # Each child leads its own process group: it and everything it started (the worker's pool
    # and beat process, runserver's threads) are stopped together.
    if kill -0 -- "-$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}

stop_all() {
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
  rm -rf "$state"
}

on_signal() {
  # Ctrl-C (or a TERM from a supervisor) is how this is meant to stop: exit 0, so `make`
  # reports nothing ("make: *** Error 143" came from passing the children's status on).
  trap - INT TERM
  echo
  echo "Stopping the web app, the worker and beat..."
  stop_all
  echo "Stopped."
  exit 0
}
trap on_signal INT TERM

# setsid: each child gets its own process group, so stop_all can signal the whole group; the
# terminal's Ctrl-C reaches this script, whose trap stops them (background children of a
# non-interactive shell would ignore SIGINT anyway). The worker logs warnings and errors only
# (-q drops its banner); runserver logs one line per request.
setsid "$BIN/celery" -A crm_keys -q worker --beat --loglevel=WARNING --concurrency=1 &
pids+=($!)
setsid "$BIN/python" manage.py runserver "$HOST:$PORT" --noreload --skip-checks &
pids+=($!)

# Wait until both are up (or one of them died), then print the login and the keys.
ready=0
for _ in $(seq 1200); do
  alive_all=1
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || alive_all=0; done
  [ "$alive_all" = 1 ] || break
  if [ -e "$CRM_KEYS_WORKER_READY_FILE" ] \
    && "$BIN/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://$HOST:$PORT/admin/login/" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ "$ready" = 1 ]; then
  echo
  echo "=== Intellicon CRM API keys is running (Ctrl-C stops the web app, the worker and beat) ==="
  echo "Admin: $SITE_URL/admin/   API: $SITE_URL/api/v1/   API docs: $SITE_URL/api/docs/"
  printf '%s\n' "$demo"
  echo
fi
unset demo

# Whichever stops first (one of them crashing) stops the other; that is a failure.
wait -n "${pids[@]}"
trap - INT TERM
echo "The web app or the worker stopped unexpectedly; stopping the other." >&2
stop_all
exit 1
