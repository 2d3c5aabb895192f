#!/usr/bin/env bash
# Web app + Celery worker with embedded beat, together; Ctrl-C stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$BIN/celery -A crm_keys worker --beat --loglevel=INFO --concurrency=1 \
  --schedule var/celerybeat-schedule &
pids+=($!)

echo "Serving http://127.0.0.1:8000/admin/ and http://127.0.0.1:8000/api/v1/ (Ctrl-C to stop)"
$BIN/python manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
wait -n "${pids[@]}"
