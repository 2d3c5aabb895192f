#!/usr/bin/env bash
# The web app (admin + API) under gunicorn, for production; `make run` uses runserver instead.
#
#   BIND=0.0.0.0:8000 WEB_WORKERS=4 scripts/run-web.sh [more gunicorn options]
#
# Each instance gets a control socket of its own (for `gunicornc -s PATH`), named after its bind
# address, under CRM_KEYS_VAR_DIR (default var/): gunicorn's default is one path per user
# (~/.gunicorn/gunicorn.ctl), which a second instance on the host takes over and then removes
# when it exits. GUNICORN_CONTROL_SOCKET=PATH picks the path; GUNICORN_CONTROL_SOCKET=off runs
# without one. A Unix socket path must stay under 108 bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIND=${BIND:-0.0.0.0:8000}
WEB_WORKERS=${WEB_WORKERS:-4}
VAR=${CRM_KEYS_VAR_DIR:-var}
CONTROL=${GUNICORN_CONTROL_SOCKET:-$VAR/gunicorn-${BIND//[^A-Za-z0-9.]/_}.ctl}
if [ -x .venv/bin/gunicorn ]; then GUNICORN=.venv/bin/gunicorn; else GUNICORN=gunicorn; fi

if [ "$CONTROL" = off ]; then
  control=(--no-control-socket)
else
  mkdir -p "$(dirname "$CONTROL")"
  control=(--control-socket "$CONTROL")
fi
exec "$GUNICORN" crm_keys.wsgi --workers "$WEB_WORKERS" --bind "$BIND" "${control[@]}" "$@"
