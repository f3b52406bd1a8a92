# Sourced by .ci/run: starts a real OpenID Connect provider on loopback for the
# tests of `identity::oidc` (tests/integration/oidc.rs) and exports TEST_OIDC_ISSUER.
# The provider is oidc-provider-mock (PyPI, pinned) in its own virtualenv; it
# signs ID tokens with RS256, publishes discovery and JWKS, and shows a sign-in
# form whose subject's claims the tests set with `PUT /users/{sub}`.
# A watchdog stops it when the shell that sourced this file exits.
#
#   source .ci/oidc.sh      # then TEST_OIDC_ISSUER=http://127.0.0.1:<port>

printf '\n== %s ==\n' "oidc provider: oidc-provider-mock"
OIDC_MOCK_VERSION=0.3.4
OIDC_VENV=${OIDC_MOCK_VENV:-$HOME/.cache/entcp-oidc-provider-mock-$OIDC_MOCK_VERSION}
[ -x "$OIDC_VENV/bin/oidc-provider-mock" ] || {
    python3 -m venv "$OIDC_VENV" &&
        "$OIDC_VENV/bin/pip" install --quiet --disable-pip-version-check "oidc-provider-mock==$OIDC_MOCK_VERSION"
} || { echo "oidc-provider-mock could not be installed"; return 1; }

OIDC_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OIDC_LOG=$(mktemp)
"$OIDC_VENV/bin/oidc-provider-mock" --host 127.0.0.1 --port "$OIDC_PORT" --require-nonce true \
    </dev/null >"$OIDC_LOG" 2>&1 &
OIDC_PID=$!
# Stops the provider once the sourcing shell ($$) is gone, whatever way it ends.
( while kill -0 $$ 2>/dev/null; do sleep 2; done; kill "$OIDC_PID" 2>/dev/null; rm -f "$OIDC_LOG" ) \
    </dev/null >/dev/null 2>&1 &

export TEST_OIDC_ISSUER="http://127.0.0.1:$OIDC_PORT"
oidc_up=false
for _ in $(seq 1 60); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/.well-known/openid-configuration', timeout=2)" \
        "$TEST_OIDC_ISSUER" 2>/dev/null; then
        oidc_up=true
        break
    fi
    kill -0 "$OIDC_PID" 2>/dev/null || break
    sleep 0.5
done
if ! $oidc_up; then
    echo "oidc-provider-mock did not come up; its log:"
    cat "$OIDC_LOG"
    return 1
fi
echo "TEST_OIDC_ISSUER=$TEST_OIDC_ISSUER (oidc-provider-mock $OIDC_MOCK_VERSION, pid $OIDC_PID)"
