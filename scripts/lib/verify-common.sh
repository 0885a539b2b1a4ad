# Sourced by scripts/verify-install.sh and scripts/verify-release.sh (manual test-host checks): their failure path.
# Needs DATA (the daemon's data dir) and say() from the sourcing script.

# die_with_logs MESSAGE [LOG...]: says MESSAGE, prints the last lines of the template build logs, mkrootfs.sh's debootstrap
# logs and any LOG given (the why of most failures), and exits 1.
die_with_logs() {
  local msg=$1 f
  shift
  say "FAILED: $msg"
  for f in "$DATA"/templates/logs/*.log /var/cache/onebox/rootfs/debootstrap-*.log "$@"; do
    [ -f "$f" ] || continue
    echo "--- tail of $f" >&2
    tail -n 25 "$f" | cut -c1-400 >&2
  done
  exit 1
}
