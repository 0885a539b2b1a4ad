// The shell script a COPY step runs in the build VM (as root, with the image's own tar and coreutils): unpack the
// uploaded tar in a temporary dir and place src at dest as Docker's COPY does.
export interface CopySpec {
  /** The uploaded (gzipped) tar, already in the guest; removed by the script. */
  tar: string;
  /** As the SDK sent it: a path relative to the build context, or a glob. */
  src: string;
  /** Absolute. Ends in "/" or names an existing directory: files go in it by their names. */
  dest: string;
  /** Owner of what was copied (its login group too). */
  owner: string;
  /** Octal mode for what was copied (each top-level item), or none. */
  mode?: string;
}

/** A single-quoted shell word. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** src as a shell word whose glob characters (* ? [ ]) still expand and nothing else does. */
export function globWord(src: string): string {
  const clean = src.replace(/^(\.\/)+/, "").replace(/\/+$/, "") || ".";
  return clean
    .split(/([*?[\]])/)
    .map((part) => (/^[*?[\]]$/.test(part) ? part : part === "" ? "" : q(part)))
    .join("");
}

/** A directory's contents go into dest; a file goes to dest, or into it when dest ends in "/" or is a directory.
 *  No match is an error (exit 1), as the SDK's own hashing refuses one. */
export function copyScript(c: CopySpec): string {
  return [
    "set -e",
    `d=$(mktemp -d /tmp/.onebox-copy.XXXXXX)`,
    `tar -xf ${q(c.tar)} -C "$d" 2>/dev/null || tar -xzf ${q(c.tar)} -C "$d"`,
    `rm -f ${q(c.tar)}`,
    `cd "$d"`,
    `dest=${q(c.dest)}`,
    `n=0`,
    // own: what this COPY placed, never what dest held before (a COPY of a directory to / must not chown /).
    `own() { chown -Rh ${q(c.owner)}: "$1"${c.mode ? `; chmod ${q(c.mode)} "$1"` : ""}; }`,
    `for s in ${globWord(c.src)}; do`,
    `  [ -e "$s" ] || [ -L "$s" ] || continue; n=$((n+1))`,
    `  if [ -d "$s" ] && [ ! -L "$s" ]; then`,
    `    mkdir -p "$dest"; cp -a "$s"/. "$dest"/`,
    `    for e in "$s"/* "$s"/.[!.]* "$s"/..?*; do [ -e "$e" ] || [ -L "$e" ] || continue; own "$dest/$(basename "$e")"; done`,
    `  else`,
    `    case "$dest" in */) mkdir -p "$dest"; t="$dest$(basename "$s")";; *) if [ -d "$dest" ]; then t="$dest/$(basename "$s")"; else mkdir -p "$(dirname "$dest")"; t="$dest"; fi;; esac`,
    `    cp -a "$s" "$t"; own "$t"`,
    `  fi`,
    `done`,
    `cd /; rm -rf "$d"`,
    `[ "$n" -gt 0 ] || { echo ${q(`COPY: no files matched ${c.src}`)} >&2; exit 1; }`,
  ].join("\n");
}
