#!/usr/bin/env bash
# `make demo`: serve Handrail on HOST:PORT, then seed it while it runs, so that
# the actions the seed approves are delivered to the demo webhook receiver
# (/demo/hooks/) of the running server. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY="${VENV:-.venv}/bin/python"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
EVENTS="${EVENTS:-300}"

if "$PY" - "$HOST" "$PORT" <<'PY'
import socket, sys
with socket.socket() as s:
    s.settimeout(1)
    sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
then
    echo "Something already listens on $HOST:$PORT; stop it or run: make demo PORT=8001" >&2
    exit 1
fi
if [ "$PORT" != 8000 ]; then
    echo "Note: the demo webhooks point at 127.0.0.1:8000; on port $PORT their deliveries fail." >&2
fi

export HANDRAIL_DEMO_RECEIVER="${HANDRAIL_DEMO_RECEIVER:-1}"
# The demo delivers to its own receiver on 127.0.0.1, which the address policy refuses
# unless it is listed (automations/outbound.py).
export HANDRAIL_ALLOWED_PRIVATE_HOSTS="${HANDRAIL_ALLOWED_PRIVATE_HOSTS:+$HANDRAIL_ALLOWED_PRIVATE_HOSTS,}127.0.0.1"
# The demo receiver and the webhook adapter share this secret (Standard Webhooks format).
if [ -z "${DEMO_WEBHOOK_SECRET:-}" ]; then
    DEMO_WEBHOOK_SECRET="whsec_$("$PY" -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(24)).decode())')"
    export DEMO_WEBHOOK_SECRET
fi

pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

if [ -n "${REDIS_URL:-}" ]; then
    echo "REDIS_URL is set: starting two Celery workers and beat for the demo"
    # As the README recommends: solo workers, each fetching and running its own tasks.
    for n in 1 2; do
        "$PY" -m celery -A reviewapp worker -Q handrail --pool solo -n "demo-$n@%h" -l warning &
        pids+=($!)
    done
    "$PY" -m celery -A reviewapp beat -s var/celerybeat-schedule -l warning &
    pids+=($!)
else
    # Tasks run in process; the periodic ones (sweep, rollups, audit queue) run here.
    LOG_LEVEL="${LOG_LEVEL:-WARNING}" "$PY" manage.py run_periodic &
    pids+=($!)
fi

# DEBUG is off by default; --insecure lets runserver serve the static files anyway.
"$PY" manage.py runserver "$HOST:$PORT" --noreload --insecure &
pids+=($!)

for _ in $(seq 1 60); do
    if "$PY" -c "import urllib.request, sys; urllib.request.urlopen('http://$HOST:$PORT/accounts/login/', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "the demo server did not start" >&2; exit 1; }
    sleep 0.5
done

LOG_LEVEL="${LOG_LEVEL:-WARNING}" "$PY" manage.py seed_demo --events "$EVENTS"

cat <<MSG

Handrail demo: http://$HOST:$PORT/  (log in with a user above; admin at /admin/ as ada)
Webhook deliveries: http://$HOST:$PORT/demo/hooks/     API schema: http://$HOST:$PORT/api/v1/openapi.json
Press Ctrl-C to stop.
MSG
wait "${pids[-1]}"
