#!/usr/bin/env bash
# Manual end-to-end check that the binary alone is the product (issue 17 item 6): inside the test host with network
# (only the Debian mirror is used), a release tarball alone, in an empty directory with no checkout on the way,
# is unpacked and its install.sh run; then it waits for the default template `base` (built by the template builder
# embedded in the binary) and creates a sandbox from it with the e2b SDK (commands.run("echo hi")).
# Emulated (TCG): 15 minutes or more. Not part of CI. Results: docs/install.md "The release alone".
#
# usage: scripts/verify-release.sh [--tarball FILE (default dist/onebox-<version>-linux-x64.tar.gz)] [--timeout S]
#        scripts/verify-release.sh --inside FILE        what runs in the test host
# Wrap it in `flock /work/testhost.lock` on a shared machine.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DATA=/var/lib/onebox
PORT=3000
T0=$SECONDS
say() { echo "verify-release: [+$((SECONDS - T0))s] $*" >&2; }
# shellcheck source=lib/verify-common.sh
source "$REPO/scripts/lib/verify-common.sh"
die() { die_with_logs "$*" "$DATA/onebox.log"; }

outer() {
  local timeout=3600 tarball=""
  while (($#)); do
    case $1 in
      --tarball) tarball=$2; shift 2 ;;
      --timeout) timeout=$2; shift 2 ;;
      -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
      *) echo "verify-release: unknown argument $1" >&2; exit 2 ;;
    esac
  done
  if [ -z "$tarball" ]; then
    tarball="$REPO/dist/onebox-$(bun -e 'console.log(require("'"$REPO"'/package.json").version)')-linux-x64.tar.gz"
  fi
  [ -f "$tarball" ] && [ -f "$tarball.sha256" ] || { echo "verify-release: $tarball (and .sha256) missing: bun run release" >&2; exit 2; }
  tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
  # The test host sees the repository (a copy, at /repo) and nothing else of this machine.
  [[ "$tarball" == "$REPO/"* ]] || { echo "verify-release: the tarball must be inside $REPO (the test host sees only it)" >&2; exit 2; }
  exec nice -n 5 "$REPO/scripts/testhost" run --net --disk 12288 --mem 8192 --timeout "$timeout" \
    "bash scripts/verify-release.sh --inside '${tarball#"$REPO/"}'"
}

inside() {
  local tarball=$REPO/$1 # relative to the repository
  [ "${ONEBOX_TESTHOST:-}" = 1 ] || { echo "verify-release: --inside runs in the test host only" >&2; exit 2; }
  say "test host: $(uname -r), $(nproc) vCPUs, root $(df -h / | awk 'NR==2 {print $4}') free"
  # A fresh machine: no data dir, no caches, no kernel; the release's files only, away from any checkout.
  rm -rf "$DATA" /var/cache/onebox /root/release
  mkdir -p /root/release
  cp "$tarball" "$tarball.sha256" /root/release/
  cd /root/release
  local name; name=$(basename "$tarball" .tar.gz)
  (cd /root/release && sha256sum -c "$name.tar.gz.sha256") >&2 || die "sha256 of the copied tarball"
  tar -xzf "$name.tar.gz"
  say "release files: $(cd /root/release && find . -type f | sort | tr '\n' ' ')"

  say "install.sh from the unpacked release (no ONEBOX_SOURCE_DIR, cwd /root/release)"
  local start=$SECONDS rc=0
  env -u ONEBOX_SOURCE_DIR ONEBOX_SERVE_ARGS="--boot-timeout-ms 1200000" bash "$name/install.sh" 2>&1 \
    | while IFS= read -r l; do echo "  [+$((SECONDS - start))s] $l"; done >&2 || rc=$?
  ((rc == 0)) || die "install.sh exited with $rc"
  local key; key=$(cat "$DATA/admin-key") || die "no admin key"

  say "waiting for template base"
  local last=0
  until onebox template ls --data-dir "$DATA" 2>/dev/null | awk 'NR > 1 {print $2}' | tr , '\n' | grep -qx base; do
    grep -q "default template build failed" "$DATA/onebox.log" 2>/dev/null && die "a default template build failed"
    if ((SECONDS - last >= 60)); then
      say "  $(grep -o '"step[^}]*' "$DATA/onebox.log" 2>/dev/null | tail -1 | cut -c1-200)"
      last=$SECONDS
    fi
    sleep 5
  done
  say "base registered: $(onebox template ls --data-dir "$DATA" | grep base | cut -c1-120)"
  grep -h "template builder" "$DATA"/templates/logs/build-base-*.log | head -1 | sed 's/^/  build log: /' >&2
  onebox template builder --data-dir "$DATA" | sed 's/^/  onebox template builder: /' >&2

  say "e2b Sandbox.create() (template base) + commands.run"
  # The SDK is the client's, from this repository's node_modules (.cache is git-ignored).
  mkdir -p "$REPO/.cache"
  local client="$REPO/.cache/verify-release-client.ts"
  cat >"$client" <<'EOF'
import { Sandbox } from "e2b";
const t0 = performance.now();
const deadline = Date.now() + 1_800_000;
for (let i = 1; ; i++) {
  try {
    const sbx = await Sandbox.create({ requestTimeoutMs: 1_200_000 });
    console.log(`Sandbox.create() ok in ${((performance.now() - t0) / 1000).toFixed(1)} s (attempt ${i}): ${sbx.sandboxId}`);
    const r = await sbx.commands.run("echo hi; cat /etc/onebox/agent.conf | grep -c BUN_BE_BUN");
    console.log(`commands.run -> exitCode=${r.exitCode} stdout=${JSON.stringify(r.stdout)}`);
    await sbx.kill();
    process.exit(r.stdout.startsWith("hi\n") ? 0 : 1);
  } catch (e) {
    console.log(`attempt ${i}: ${e instanceof Error ? e.message : String(e)}`);
    if (Date.now() > deadline) process.exit(1);
    await Bun.sleep(10_000);
  }
}
EOF
  rc=0
  E2B_API_KEY=$key E2B_API_URL=http://localhost:$PORT E2B_SANDBOX_URL=http://localhost:$PORT bun "$client" 2>&1 | sed 's/^/  sdk: /' >&2 || rc=$?
  rm -f "$client"
  ((rc == 0)) || die "the SDK client failed (exit $rc)"
  say "PASS: the release alone installed, built base with its own builder and served a create in $((SECONDS - T0)) s"
}

case ${1:-} in
  --inside) inside "$2" ;;
  *) outer "$@" ;;
esac
