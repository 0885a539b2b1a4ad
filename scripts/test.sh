#!/usr/bin/env bash
# The README's test command: unit tests on this host, then the e2e suite inside the test host.
# Ends with one line "N passed, N failed" (summing both suites).
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0 failed=0 status=0

# count_bun_results FILE: add every bun test "N pass" / "N fail" summary line in FILE to the totals.
count_bun_results() {
  local p f
  p=$(awk '/^ *[0-9]+ pass$/ {n += $1} END {print n + 0}' "$1")
  f=$(awk '/^ *[0-9]+ fail$/ {n += $1} END {print n + 0}' "$1")
  passed=$((passed + p)); failed=$((failed + f))
}

# count_e2e_results FILE: add scripts/test-e2e.sh's own totals, its last line "test-e2e: N pass,
# N fail ...": it takes each file's result from the test host that finished it, so bun's summary
# lines from a test host that died or stalled mid-run (and whose files ran again) are not counted twice.
count_e2e_results() {
  local line
  line=$(grep -E '^test-e2e: [0-9]+ pass, [0-9]+ fail' "$1" | tail -n 1)
  [ -n "$line" ] || return 0 # no e2e files, or it crashed before its summary (status fails the run)
  passed=$((passed + $(echo "$line" | awk '{print $2}')))
  failed=$((failed + $(echo "$line" | awk '{print $4}')))
}

log=$(mktemp) fails=$(mktemp)
bun run test:unit 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count_bun_results "$log"
# CI keeps only the tail of this output: each failing test, with the lines bun printed before its name (the
# error), is repeated at the end, at most 60 lines per suite.
failures() { grep -B 8 -E '^\(fail\) ' "$1" | head -n 60 | sed "s/^/$2: /" >>"$fails"; }
failures "$log" unit

if [ "${ONEBOX_SKIP_E2E:-0}" != 1 ]; then
  bash scripts/test-e2e.sh 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  count_e2e_results "$log"
  failures "$log" e2e
fi
if [ -s "$fails" ]; then
  echo "failed tests (e2e lines include runs in a test host that stalled and whose files ran again):"
  cat "$fails"
fi
rm -f "$log" "$fails"
# A suite that crashed before printing its summary must still fail the run.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit "$status"
