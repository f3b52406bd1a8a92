# Sourced by .ci/run: the real browser of the console's browser tests
# (crates/entctl/tests/integration/browser.rs). Installs Debian's chromium and
# chromium-driver when missing and axe-core (npm, pinned) under target/axe (outside
# git), starts chromedriver on a free loopback port (service.sh) and exports TEST_WEBDRIVER_URL
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

. "$(dirname "${BASH_SOURCE[0]}")/service.sh"
WEBDRIVER_PORT=$(free_port)
export TEST_WEBDRIVER_URL="http://127.0.0.1:$WEBDRIVER_PORT"
export TEST_AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"
start_service chromedriver "$TEST_WEBDRIVER_URL/status" \
    /usr/bin/chromedriver --port="$WEBDRIVER_PORT" --allowed-ips=127.0.0.1 || return 1
echo "TEST_WEBDRIVER_URL=$TEST_WEBDRIVER_URL TEST_AXE_JS=$TEST_AXE_JS (pid $SERVICE_PID)"
