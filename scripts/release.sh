#!/usr/bin/env bash
# Makes a release: dist/onebox-<version>-linux-x64.tar.gz (onebox-<version>-linux-x64/{onebox, install.sh, README.md})
# and its .sha256 (`sha256sum -c` format), from a fresh `bun run build` (package.json's version).
#
# usage: scripts/release.sh [--no-build] [--out DIR]
#   --no-build   package the dist/onebox there is (the tests, after the CI's build)
#   --out DIR    where the tarball and its .sha256 go (default dist/)
# The tarball is reproducible for a given binary: sorted names, root-owned, mtime of the last commit, gzip -n.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "release: error: $*" >&2; exit 1; }

BUILD=1 OUT=dist
while (($#)); do
  case "$1" in
    --no-build) BUILD=0; shift ;;
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[ "$(uname -m)" = x86_64 ] || die "onebox releases are linux-x64; this is $(uname -m)"
version=$(bun -e 'console.log(require("./package.json").version)')
[[ "$version" =~ ^[0-9A-Za-z.+-]+$ ]] || die "package.json's version '$version' is not a file-name-safe version"
((BUILD == 0)) || bun run build >&2
[ -x dist/onebox ] || die "dist/onebox is missing: run bun run build"

name="onebox-$version-linux-x64"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/onebox-release.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -m 0755 "$stage/$name"
install -m 0755 dist/onebox "$stage/$name/onebox"
install -m 0755 install.sh "$stage/$name/install.sh"
install -m 0644 README.md "$stage/$name/README.md"

mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tarball="$name.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C "$stage" -cf - "$name" | gzip -n >"$stage/$tarball"
(cd "$stage" && sha256sum "$tarball" >"$tarball.sha256")
mv -f "$stage/$tarball" "$stage/$tarball.sha256" "$OUT/"
echo "$OUT/$tarball"
echo "release: $OUT/$tarball ($(du -m "$OUT/$tarball" | cut -f1) MiB), sha256 $(cut -c1-64 "$OUT/$tarball.sha256")" >&2
