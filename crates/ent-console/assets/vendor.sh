#!/usr/bin/env bash
# Vendors the console's front-end files from the npm registry into this folder (run by
# hand when upgrading; the files are committed and embedded into the binary, so neither
# Node nor a CDN is needed at run time). The DSFR is only used by the `etat` theme.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DSFR_VERSION=1.15.3
HTMX_VERSION=2.0.11
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
# --ignore-scripts: the DSFR's preinstall script expects a project scaffolded by its CLI.
npm install --ignore-scripts --no-audit --no-fund "@gouvfr/dsfr@$DSFR_VERSION" "htmx.org@$HTMX_VERSION" >/dev/null
dist=node_modules/@gouvfr/dsfr/dist
rm -rf "$here/dsfr"
mkdir -p "$here/dsfr/fonts"
cp "$dist/dsfr.min.css" "$dist/dsfr.module.min.js" "$here/dsfr/"
cp node_modules/@gouvfr/dsfr/LICENSE.md "$here/dsfr/LICENSE.md"
cp "$dist"/fonts/*.woff2 "$here/dsfr/fonts/"
# Only the icons the stylesheet refers to.
grep -o 'url([^)"]*)' "$dist/dsfr.min.css" | sed 's/^url(//;s/)$//' | grep '^icons/' | sort -u |
    while read -r icon; do
        mkdir -p "$here/dsfr/$(dirname "$icon")"
        cp "$dist/$icon" "$here/dsfr/$icon"
    done
cp node_modules/htmx.org/dist/htmx.min.js "$here/htmx.min.js"
echo "DSFR $DSFR_VERSION, htmx $HTMX_VERSION vendored into $here"
