# Sourced by scripts that take packages from one Debian suite (e.g. bookworm-backports) without
# touching the machine's own apt sources: a private apt index under the cache holds only that suite.
# apt_suite SUITE CACHE_DIR [MIRROR]: sets APT, the options that point apt-get/apt-cache at the
# private index (empty SUITE: APT=(), the machine's own sources). Run `apt-get "${APT[@]}" update`
# before the first lookup.
apt_suite() {
  APT=()
  [ -n "$1" ] || return 0
  [[ $1 =~ ^[a-z0-9-]+$ ]] || { echo "apt-suite: not a Debian suite name: $1" >&2; return 1; }
  local dir="$2/apt-$1"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${3:-http://deb.debian.org/debian} $1 main" \
    >"$dir/sources.list"
  APT=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
       -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache")
}
