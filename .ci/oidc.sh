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

. "$(dirname "${BASH_SOURCE[0]}")/service.sh"
OIDC_PORT=$(free_port)
export TEST_OIDC_ISSUER="http://127.0.0.1:$OIDC_PORT"
start_service oidc-provider-mock "$TEST_OIDC_ISSUER/.well-known/openid-configuration" \
    "$OIDC_VENV/bin/oidc-provider-mock" --host 127.0.0.1 --port "$OIDC_PORT" --require-nonce true || return 1
echo "TEST_OIDC_ISSUER=$TEST_OIDC_ISSUER (oidc-provider-mock $OIDC_MOCK_VERSION, pid $SERVICE_PID)"
