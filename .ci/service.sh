# Sourced by the scripts that start a test peer on loopback (browser.sh, oidc.sh).

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_service NAME READY_URL COMMAND...: runs COMMAND in the background with its output in a
# temporary log, stops it once the sourcing shell ($$) is gone whatever way it ends, and waits
# up to 30 s for READY_URL to answer; otherwise prints the log and fails. Sets SERVICE_PID.
start_service() {
    local name=$1 ready=$2 log
    shift 2
    log=$(mktemp)
    "$@" </dev/null >"$log" 2>&1 &
    SERVICE_PID=$!
    ( while kill -0 $$ 2>/dev/null; do sleep 2; done; kill "$SERVICE_PID" 2>/dev/null; rm -f "$log" ) \
        </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 60); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$ready" \
            2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVICE_PID" 2>/dev/null || break
        sleep 0.5
    done
    echo "$name did not come up; its log:"
    cat "$log"
    return 1
}
