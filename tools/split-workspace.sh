#!/usr/bin/env bash
# Splits the `control-plane` crate (phase-A layout of issue #14) into a Cargo
# workspace of crates whose dependencies only point down. Run from the
# repository root on a clean tree; running it again on a split tree does nothing.
#
#   bash tools/split-workspace.sh
#
# It moves the modules (`git mv`, so history follows), writes the manifests
# (every crate takes `[lints] workspace = true`) and rewrites the `crate::` paths
# that now leave their crate. It relies on the modules importing nothing above
# their layer (`bash /work/prompts/layers.sh` printing nothing but `yaml` and
# the `text_enum!` macro, both of the kernel).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -d control-plane/src ]; then
    echo "already split (no control-plane/src): nothing to do"
    exit 0
fi

# module -> crate, bottom to top (the order is the layering).
MODULES=(
    "error:ent-kernel" "clock:ent-kernel" "validate:ent-kernel" "files:ent-kernel" "throttle:ent-kernel"
    "store:ent-kernel" "config:ent-kernel" "http:ent-kernel" "kernel:ent-kernel" "yaml:ent-kernel"
    "documents:ent-documents"
    "audit:ent-platform" "registry:ent-platform" "identity:ent-platform" "contracts:ent-platform" "catalog:ent-platform"
    "jobs:ent-ops" "notify:ent-ops"
    "conventions:ent-conventions"
    "tenants:ent-tenants" "provisioning:ent-tenants"
    "support:ent-support"
    "rgpd:ent-rgpd"
    "groupements:ent-groupements"
    "api:ent-server"
    "synthetic:ent-testkit"
    "bench:entctl" "demo:entctl"
)
# `commands` is the binary's own module (declared in main.rs): it moves with main.rs.
CRATES=(ent-kernel ent-documents ent-platform ent-ops ent-conventions ent-tenants ent-support ent-rgpd
    ent-groupements ent-server ent-testkit entctl)

crate_of() {
    local m
    for m in "${MODULES[@]}"; do
        [ "${m%%:*}" = "$1" ] && { echo "${m#*:}"; return; }
    done
}
lib_of() { echo "${1//-/_}"; }

# --- 1. move the modules -------------------------------------------------------
for m in "${MODULES[@]}"; do
    module=${m%%:*} crate=${m#*:}
    mkdir -p "crates/$crate/src"
    for path in "control-plane/src/$module" "control-plane/src/$module.rs"; do
        [ -e "$path" ] && git mv "$path" "crates/$crate/src/"
    done
done
git mv control-plane/src/main.rs crates/entctl/src/main.rs
git mv control-plane/src/commands crates/entctl/src/commands
git mv control-plane/migrations crates/ent-kernel/migrations
git mv control-plane/tests crates/entctl/tests
git mv tests/e2e_cli.rs crates/entctl/tests/e2e_cli.rs

# --- 2. lib.rs of each crate: its modules -------------------------------------
for crate in "${CRATES[@]}"; do
    lib="crates/$crate/src/lib.rs"
    {
        echo "//! $crate: see ARCHITECTURE.md for what it holds and what it may use."
        echo
        for m in "${MODULES[@]}"; do
            [ "${m#*:}" = "$crate" ] && echo "pub mod ${m%%:*};"
        done
    } > "$lib"
done
# The binary's library keeps the old crate name's paths for the tests: every module re-exported.
{
    echo
    echo "// Every module of every crate under one name, so that the tests keep their paths."
    for m in "${MODULES[@]}"; do
        module=${m%%:*} crate=${m#*:}
        [ "$crate" = entctl ] || echo "pub use $(lib_of "$crate")::$module;"
    done
} >> crates/entctl/src/lib.rs

# --- 3. rewrite crate:: paths that leave their crate ---------------------------
for crate in "${CRATES[@]}"; do
    find "crates/$crate/src" -name '*.rs' -not -path '*/commands/*' -not -name main.rs | while read -r file; do
        for m in "${MODULES[@]}"; do
            module=${m%%:*} owner=${m#*:}
            [ "$owner" = "$crate" ] && continue
            sed -i -E "s/\bcrate::$module\b/$(lib_of "$owner")::$module/g" "$file"
        done
    done
done
# The binary and the tests keep using the library `entcp` (entctl's library re-exports every module).
# `text_enum!` is exported at the kernel's root.
grep -rl 'crate::text_enum!' crates --include='*.rs' | grep -v '^crates/ent-kernel/' | while read -r file; do
    sed -i 's/crate::text_enum!/ent_kernel::text_enum!/g' "$file"
done

# --- 4. files found relative to the source (include_str!, migrate!) ----------
# One more level: control-plane/src/x -> crates/<crate>/src/x.
grep -rlE 'include_(str|bytes)!\("\.\./' crates | while read -r file; do
    sed -i -E 's#include_(str|bytes)!\("\.\./#include_\1!("../../#' "$file"
done
# demo.rs read the fixtures of control-plane/tests, now in crates/entctl/tests.
sed -i -E 's#include_bytes!\("\.\./\.\./tests/fixtures/#include_bytes!("../tests/fixtures/#' crates/entctl/src/demo.rs

# Paths the tests build from their manifest folder (control-plane/ -> crates/entctl/).
T=crates/entctl/tests
sed -i 's#^\#\[path = "../control-plane/tests/common/mod.rs"\]#\#[path = "common/mod.rs"]#' $T/e2e_cli.rs
sed -i -E 's#join\("\.\./tenants/examples"\)#join("../../tenants/examples")#' $T/e2e_cli.rs
sed -i -E 's#join\("\.\./tests/support/#join("../../tests/support/#' $T/common/smtp.rs
sed -i -E 's#join\("src/groupements/#join("../ent-groupements/src/groupements/#' $T/integration/groupements.rs

# --- 5. manifests --------------------------------------------------------------
# Every external dependency moves to [workspace.dependencies]; each crate takes
# the ones its sources name (kube and k8s-openapi end up in ent-tenants only).
python3 - <<'PY'
import re, pathlib, tomllib
root = pathlib.Path('.')
old = tomllib.loads((root / 'control-plane/Cargo.toml').read_text())
deps = old['dependencies']
dev = old.get('dev-dependencies', {})
crates = ["ent-kernel", "ent-documents", "ent-platform", "ent-ops", "ent-conventions", "ent-tenants",
          "ent-support", "ent-rgpd", "ent-groupements", "ent-server", "ent-testkit", "entctl"]
DESCRIPTIONS = {
    "ent-kernel": "ENT control plane kernel: errors, clock, configuration, store, HTTP kit, roles",
    "ent-documents": "ENT control plane documents: HTML, ODT, PDF and ODS renderers",
    "ent-platform": "ENT control plane platform: registry, identity and authorisation, audit, contracts, catalog",
    "ent-ops": "ENT control plane operations: job records and schedules, mail outbox",
    "ent-conventions": "ENT control plane conventions",
    "ent-tenants": "ENT control plane tenants and their provisioning",
    "ent-support": "ENT control plane support desk",
    "ent-rgpd": "ENT control plane RGPD registers",
    "ent-groupements": "ENT control plane groupements de commandes",
    "ent-server": "ENT control plane composition root: application state, routes, job table, runner",
    "ent-testkit": "ENT control plane synthetic annuaire (bench, tests)",
    "entctl": "ENT control plane: the entctl binary (CLI, bench, demo) and its tests",
}
def dep_line(name, spec):
    if isinstance(spec, str):
        return f'{name} = "{spec}"'
    parts = []
    for k, v in spec.items():
        if isinstance(v, bool): parts.append(f'{k} = {"true" if v else "false"}')
        elif isinstance(v, list): parts.append(f'{k} = [' + ', '.join(f'"{x}"' for x in v) + ']')
        else: parts.append(f'{k} = "{v}"')
    return f'{name} = {{ ' + ', '.join(parts) + ' }'
ws = (root / 'Cargo.toml').read_text()
if '[workspace.dependencies]' not in ws:
    ws = ws.replace('members = ["control-plane"]', 'members = ["crates/*"]')
    ws += '\n[workspace.dependencies]\n' + '\n'.join(dep_line(n, s) for n, s in {**deps, **dev}.items()) + '\n'
    ws += ''.join(f'{c} = {{ path = "crates/{c}" }}\n' for c in crates if c != 'entctl')
    (root / 'Cargo.toml').write_text(ws)
for i, crate in enumerate(crates):
    src = root / 'crates' / crate
    text = '\n'.join(p.read_text() for p in src.rglob('*.rs'))
    used = [n for n in deps if re.search(r'\b' + n.replace('-', '_') + r'::', text) or n in ('sqlx', 'tokio', 'serde')]
    inner = [c for c in crates[:i] if re.search(r'\b' + c.replace('-', '_') + r'::', text)]
    lines = ['[package]', f'name = "{crate}"', f'description = "{DESCRIPTIONS[crate]}"', 'version.workspace = true',
             'edition.workspace = true', 'license.workspace = true']
    if crate == 'entctl':
        lines += ['default-run = "entctl"', '', '[lib]', 'name = "entcp"', 'path = "src/lib.rs"', '',
                  '[[bin]]', 'name = "entctl"', 'path = "src/main.rs"', '',
                  '[[test]]', 'name = "integration"', 'path = "tests/integration/main.rs"', '',
                  '[[test]]', 'name = "e2e_cli"', 'path = "tests/e2e_cli.rs"']
    lines += ['', '[lints]', 'workspace = true']
    lines += ['', '[dependencies]'] + [f'{n}.workspace = true' for n in used] + [f'{c}.workspace = true' for c in inner]
    if crate == 'entctl':
        lines += [f'{c}.workspace = true' for c in crates[:-1] if c not in inner]
        lines += ['', '[dev-dependencies]'] + [f'{n}.workspace = true' for n in dev]
    else:
        used_dev = [n for n in dev if re.search(r'\b' + n.replace('-', '_') + r'::', text)]
        if used_dev:
            lines += ['', '[dev-dependencies]'] + [f'{n}.workspace = true' for n in used_dev]
    (src / 'Cargo.toml').write_text('\n'.join(lines) + '\n')
PY
git rm -q control-plane/Cargo.toml control-plane/src/lib.rs
cargo fmt --all
git add -A crates Cargo.toml
echo "split done: cargo check --workspace --tests"
