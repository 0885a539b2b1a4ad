#!/usr/bin/env bash
# Runs tests/e2e inside the test host (real Linux guests under onebox's VMM).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d tests/e2e ] || [ -z "$(ls tests/e2e/*.test.ts 2>/dev/null)" ]; then
  echo "no e2e tests yet"; exit 0
fi
exec scripts/testhost run 'bun test --timeout 600000 tests/e2e'
