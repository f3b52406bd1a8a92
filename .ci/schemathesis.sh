#!/usr/bin/env bash
# schemathesis (from PyPI, pinned) over every operation of the OpenAPI document of
# `entctl serve --demo` (SQLite in a temporary data dir, loopback port), once as an
# admin and once as an usager, with a bounded number of examples per operation.
# Fails on any 5xx and on any response that disagrees with the document (status
# code, content type, headers, body schema). Always stops the server.
#
#   bash .ci/schemathesis.sh            # from the repository root; builds entctl (debug)
#   SCHEMATHESIS_MAX_EXAMPLES=5 ...     # fewer examples per operation
#   ENTCTL=path/to/entctl ...           # an already-built binary
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-25}
SEED=${SCHEMATHESIS_SEED:-20261130}
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$WORK/server.log" ]; then
        echo "--- server log (last 40 lines) ---"
        tail -n 40 "$WORK/server.log" || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

# --- schemathesis in its own virtualenv (the system Python when venv is missing) ---
VENV=${SCHEMATHESIS_VENV:-$HOME/.cache/entcp-schemathesis-$SCHEMATHESIS_VERSION}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || true
PY="$VENV/bin/python"
"$PY" -m pip --version >/dev/null 2>&1 || PY=python3
case "$("$PY" -m schemathesis.cli --version 2>/dev/null || true)" in
    *"$SCHEMATHESIS_VERSION"*) ;;
    *) "$PY" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ;;
esac
"$PY" -m schemathesis.cli --version

# --- the server ------------------------------------------------------------------
if [ -z "${ENTCTL:-}" ]; then
    cargo build --quiet -p entctl --bin entctl
    ENTCTL=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/entctl
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ENTCP_DATA_DIR="$WORK/data"
export ENTCP_LISTEN="127.0.0.1:$PORT"
export ENTCP_LOG_LEVEL=warn
unset ENTCP_DATABASE_URL DATABASE_URL
mkdir -p "$ENTCP_DATA_DIR"
entctl() { "$ENTCTL" "$@" </dev/null; }

"$ENTCTL" serve --demo >"$WORK/server.log" 2>&1 </dev/null &
SERVER_PID=$!
BASE="http://127.0.0.1:$PORT"
up=false
for _ in $(seq 1 240); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$BASE/readyz" 2>/dev/null; then
        up=true
        break
    fi
    sleep 0.5
done
$up || { echo "the server did not come up"; exit 1; }

# --- tokens, through the CLI on the same data dir ---------------------------------
entctl users add admin@schemathesis.test --name "Administrateur CI" >/dev/null
entctl roles grant admin@schemathesis.test admin >/dev/null
ADMIN_TOKEN=$(entctl tokens create admin@schemathesis.test --name schemathesis 2>/dev/null)
entctl users add usager@schemathesis.test --name "Usager CI" --org 0940176F >/dev/null
entctl roles grant usager@schemathesis.test usager --org 0940176F >/dev/null
USAGER_TOKEN=$(entctl tokens create usager@schemathesis.test --name schemathesis 2>/dev/null)

# --- runs (hooks: a serializer for the PDF uploads) ---------------------------
HOOKS_DIR=$(pwd)/.ci

run_as() {
    local who=$1 token=$2
    echo "== schemathesis as $who: $MAX_EXAMPLES examples per operation =="
    # From a work dir of its own: schemathesis keeps its replay data in ./.schemathesis.
    mkdir -p "$WORK/$who"
    (cd "$WORK/$who" && PYTHONPATH="$HOOKS_DIR" SCHEMATHESIS_HOOKS=schemathesis_hooks "$PY" -m schemathesis.cli run "$BASE/api/v1/openapi.json" \
        --url "$BASE" \
        --header "Authorization: Bearer $token" \
        --checks "$CHECKS" \
        --phases examples,coverage,fuzzing \
        --max-examples "$MAX_EXAMPLES" \
        --seed "$SEED" \
        --workers 2 \
        --request-timeout 30 \
        --suppress-health-check all \
        --no-color \
        --generation-database none \
        --report junit --report-dir "${SCHEMATHESIS_REPORT_DIR:-$WORK}/report-$who")
}
# Both runs at once (each mostly waits on the other's requests and on Python), each
# with its own log, shown whole once both are done.
run_as admin "$ADMIN_TOKEN" >"$WORK/admin.log" 2>&1 &
admin_pid=$!
run_as usager "$USAGER_TOKEN" >"$WORK/usager.log" 2>&1 &
usager_pid=$!
rc=0
wait "$admin_pid" || rc=1
wait "$usager_pid" || rc=1
cat "$WORK/admin.log" "$WORK/usager.log"
exit "$rc"
