# Sourced by .ci/run: installs kubernetes-validate (PyPI, pinned: it ships the Kubernetes
# OpenAPI schemas of 1.25 to 1.37) in a virtualenv cached under target/, and exports
# KUBERNETES_VALIDATE, the path of its command, for the schema test of the rendered objects
# (tests/integration/tenants_schema.rs), which fails under CI without it.
#
#   source .ci/kubeschema.sh      # then KUBERNETES_VALIDATE=<venv>/bin/kubernetes-validate

printf '\n== %s ==\n' "kubernetes schemas: kubernetes-validate"
KUBEVAL_VERSION=1.37.0
KUBEVAL_VENV=${KUBEVAL_VENV:-$PWD/target/kubeschema-venv-$KUBEVAL_VERSION}
[ -x "$KUBEVAL_VENV/bin/kubernetes-validate" ] || {
    python3 -m venv "$KUBEVAL_VENV" &&
        "$KUBEVAL_VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBEVAL_VERSION"
} || { echo "kubernetes-validate could not be installed"; return 1; }
# kubernetes-validate reads and parses its schema definitions (megabytes of JSON) again for
# every object it checks: 17 s of the schema test's 18. This command is the same one, with each
# schema file read once per run (the same files, the same answers).
cat >"$KUBEVAL_VENV/bin/kubernetes-validate-once" <<PY
#!$KUBEVAL_VENV/bin/python3
import functools, sys
import kubernetes_validate.utils as utils
utils.schema_contents = functools.lru_cache(maxsize=None)(utils.schema_contents)
from kubernetes_validate.__main__ import main
sys.exit(main())
PY
chmod +x "$KUBEVAL_VENV/bin/kubernetes-validate-once"
export KUBERNETES_VALIDATE="$KUBEVAL_VENV/bin/kubernetes-validate-once"
"$KUBERNETES_VALIDATE" --version
