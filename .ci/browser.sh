# Sourced by .ci/run: the real browser of the console's browser tests
# (crates/entctl/tests/integration/browser.rs). Installs Debian's chromium and
# chromium-driver when missing and axe-core (npm, pinned) under target/axe (outside
# git), starts chromedriver on a free loopback port and exports TEST_WEBDRIVER_URL
# and TEST_AXE_JS. A watchdog stops chromedriver when the sourcing shell exits.
#
#   source .ci/browser.sh   # then TEST_WEBDRIVER_URL=http://127.0.0.1:<port>

printf '\n== %s ==\n' "browser: chromium, chromedriver, axe-core"
AXE_VERSION=4.10.3
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null ||
        { echo "chromium could not be installed"; return 1; }
fi
AXE_DIR="$PWD/target/axe"
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
    mkdir -p "$AXE_DIR" &&
        npm install --prefix "$AXE_DIR" --no-save --no-audit --no-fund --silent "axe-core@$AXE_VERSION" ||
        { echo "axe-core could not be installed"; return 1; }
fi
/usr/bin/chromium --version

WEBDRIVER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WEBDRIVER_LOG=$(mktemp)
/usr/bin/chromedriver --port="$WEBDRIVER_PORT" --allowed-ips=127.0.0.1 </dev/null >"$WEBDRIVER_LOG" 2>&1 &
WEBDRIVER_PID=$!
# Stops chromedriver (and the browsers it started) once the sourcing shell ($$) is gone.
( while kill -0 $$ 2>/dev/null; do sleep 2; done; kill "$WEBDRIVER_PID" 2>/dev/null; rm -f "$WEBDRIVER_LOG" ) \
    </dev/null >/dev/null 2>&1 &

export TEST_WEBDRIVER_URL="http://127.0.0.1:$WEBDRIVER_PORT"
export TEST_AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"
webdriver_up=false
for _ in $(seq 1 60); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/status', timeout=2)" \
        "$TEST_WEBDRIVER_URL" 2>/dev/null; then
        webdriver_up=true
        break
    fi
    kill -0 "$WEBDRIVER_PID" 2>/dev/null || break
    sleep 0.5
done
if ! $webdriver_up; then
    echo "chromedriver did not come up; its log:"
    cat "$WEBDRIVER_LOG"
    return 1
fi
echo "TEST_WEBDRIVER_URL=$TEST_WEBDRIVER_URL TEST_AXE_JS=$TEST_AXE_JS (pid $WEBDRIVER_PID)"
