#!/usr/bin/env bash
# Runs the e2e files listed in tests/e2e/suite.txt inside the test host (real Linux guests under
# onebox's VMM). `scripts/test-e2e.sh FILE...` runs the named files instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(grep -v -e '^#' -e '^[[:space:]]*$' tests/e2e/suite.txt | sed 's|^|tests/e2e/|')
fi
[ ${#files[@]} -gt 0 ] || { echo "no e2e tests listed in tests/e2e/suite.txt"; exit 0; }
for f in "${files[@]}"; do [ -f "$f" ] || { echo "e2e file missing: $f" >&2; exit 1; }; done
# The test host has no network: the SDK journey's (and the snapshots test's) guest image is built out here (debootstrap from
# Debian's mirror, cached by mkrootfs.sh) and reaches the test host inside its copy of the repo.
if printf '%s\n' "${files[@]}" | grep -q -e 'api-journey' -e '/snapshots.test' -e '/dashboard.test'; then
  bash scripts/mkrootfs.sh --out .cache/api-e2e-template --variant minimal >&2
fi
# The code interpreter's image likewise (debootstrap + the Python data stack; minutes on first use,
# then seconds from the cache). Built only when its test runs.
if printf '%s\n' "${files[@]}" | grep -q 'api-code-interpreter'; then
  bash scripts/mkrootfs.sh --out .cache/api-e2e-ci-template --variant code-interpreter >&2
fi
# The network test's image: the base variant (curl, git, CA certificates), cached the same way.
if printf '%s\n' "${files[@]}" | grep -q '/net.test'; then
  bash scripts/mkrootfs.sh --out .cache/api-e2e-base-template --variant base >&2
fi
# The OCI templates' tests: images made out here from Debian's packages (the test host has no network
# for debootstrap), built with `onebox template build --from-image --out`, and the glibc image's OCI
# layout, which template-build.test.ts pushes to its own docker-registry inside the test host.
if printf '%s\n' "${files[@]}" | grep -q -e '/oci-template.test' -e '/template-build.test'; then
  bun scripts/oci-e2e-images.ts >&2
fi
# 12 GiB: the test host's /tmp is RAM (tmpfs) and holds every test's template copies, layers and
# snapshots next to the guests' own memory; with 6 GiB a full suite ran into memory pressure
# (suspected: a 100-stream vsock test hung right after the agent SDK file had run; not diagnosed).
# One `bun test` per file, in suite.txt's order (one bun run orders files its own way; twice the
# echo-guest tests hung when they ran right after agent-sdk.test.ts), each under a deadline
# (scripts/e2e-run-files.sh).
# The test host itself can fail mid-run in two ways: it stalls (its console heartbeat stops;
# --stall, status 123) or it dies (its kernel panicked, e.g. "corrupted stack end detected inside
# scheduler" with many nested guests; status 122). Either way the files it had not finished
# ("e2e-run-files: done F" lines) run again in a fresh test host, at most twice (a CI run lost to a
# death and then a stall in its one rerun: docs/testhost.md); a third stall or death fails the run,
# and no rerun starts with less than 10 minutes of the budget left. A test that fails is never
# rerun: only the test host's own failures are. All attempts share one time budget
# (ONEBOX_E2E_TIMEOUT), which keeps CI under its 90 minutes with room for the unit tests and the
# image builds.
# Counting: each file's result is taken from the attempt that finished it (bun's summary lines after
# the file's last "start" marker), so a dead attempt's partial output is not counted; a file no
# attempt finished counts as one failure. The last line, "test-e2e: N pass, N fail ...", is what
# scripts/test.sh counts.
budget=${ONEBOX_E2E_TIMEOUT:-3900}
# What the tests keep (the dashboard's screenshots): $ONEBOX_ARTEFACTS, else a new temporary dir; every test host's
# are copied there after it ends (scripts/testhost --artefacts), a rerun's over its predecessor's.
artefacts=${ONEBOX_ARTEFACTS:-$(mktemp -d /tmp/onebox-e2e-artefacts.XXXXXX)}
t0=$SECONDS
raw=$(mktemp); results=$(mktemp); trap 'rm -f "$raw" "$results"' EXIT
rc=0 stalls=0 deaths=0 reruns=0 all_files=("${files[@]}")
max_attempts=3
for ((attempt = 1; attempt <= max_attempts; attempt++)); do
  left=$((budget - (SECONDS - t0)))
  ((left >= 300)) || left=300
  : >"$raw"
  set +e # (under set -e a failed pipeline would end this script here, before any rerun)
  ONEBOX_E2E_ATTEMPT=$attempt scripts/testhost run --timeout "$left" --stall "${ONEBOX_E2E_STALL:-240}" --artefacts "$artefacts" \
    --mem "${ONEBOX_E2E_MEM:-12288}" "bash scripts/e2e-run-files.sh ${files[*]}" 2>&1 | tee "$raw"
  rc=${PIPESTATUS[0]}
  set -e
  # Per finished file: "F PASS FAIL" (a killed attempt's partial summary is reset by its rerun's start).
  awk '
    /^e2e-run-files: start / { p = 0; f = 0; next }
    /^ *[0-9]+ pass$/ { p += $1; next }
    /^ *[0-9]+ fail$/ { f += $1; next }
    /^e2e-run-files: deadline twice / { p = 0; f = 1; next }
    /^e2e-run-files: done / { file = $0; sub(/^e2e-run-files: done /, "", file); print file, p, f }
  ' "$raw" >>"$results"
  case $rc in
    123) stalls=$((stalls + 1)); what=stall ;;
    122) deaths=$((deaths + 1)); what=death ;;
    *) break ;;
  esac
  ((attempt < max_attempts)) || break
  rest=()
  for f in "${files[@]}"; do
    awk -v f="$f" '$1 == f { found = 1 } END { exit !found }' "$results" || rest+=("$f")
  done
  [ ${#rest[@]} -gt 0 ] || { rc=0; break; } # it died after the last file was done: rc from the counts below
  if ((budget - (SECONDS - t0) < 600)); then
    echo "test-e2e: no rerun after a $what of the test host: less than 600 s of the ${budget} s budget left" >&2
    break
  fi
  reruns=$((reruns + 1))
  echo "test-e2e: RERUN in a fresh test host after a $what of the test host: ${rest[*]}" >&2
  files=("${rest[@]}")
done
pass=0 fail=0 unfinished=0
for f in "${all_files[@]}"; do
  if read -r _ p fl < <(awk -v f="$f" '$1 == f' "$results" | tail -n 1) && [ -n "${p:-}" ]; then
    pass=$((pass + p)); fail=$((fail + fl))
  else
    unfinished=$((unfinished + 1)); fail=$((fail + 1))
  fi
  p=""
done
echo "test-e2e: artefacts in $artefacts"
# The counts decide where the test host could not report (it died after its last file).
((fail == 0)) || [ "$rc" != 0 ] || rc=1
echo "test-e2e: $pass pass, $fail fail in ${#all_files[@]} files ($unfinished unfinished); test host: $stalls stalls, $deaths deaths, $reruns reruns; $((SECONDS - t0)) s (exit $rc)"
exit "$rc"
