#!/usr/bin/env bash
# Builds the native parts (ffi/) and the single executable dist/onebox.
set -euo pipefail
cd "$(dirname "$0")/.."
make -C ffi -j"$(nproc)"
make -C guest/init -j"$(nproc)"
mkdir -p dist
bun build guest/agent/main.ts --target=bun --outfile dist/guest/agent.js
# The dashboard's bundle (xterm.js included), embedded by src/dashboard/assets.ts: nothing from a CDN at run time.
bun build src/dashboard/client/main.ts --target=browser --minify --outdir dist/dashboard --entry-naming 'app.[ext]'
bun build --compile --minify-syntax src/main.ts --outfile dist/onebox
