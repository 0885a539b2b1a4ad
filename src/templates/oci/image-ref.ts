// An OCI image reference as `onebox template build --from-image` takes it (docker's syntax:
// [registry[:port]/]path[:tag][@digest]), checked before it reaches skopeo's command line.
import { badRequest } from "../../util/errors.ts";

export interface ImageRef {
  /** As given, without a `docker://` prefix: what skopeo resolves (a bare `alpine` is docker.io/library/alpine). */
  ref: string;
  /** The registry host[:port], the key of the credentials file (docker.io for names without one). */
  registry: string;
}

// Docker's grammar, loosely: path components of [a-z0-9._-], a tag of [\w.-], a digest algo:hex.
const REF = /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9._-]+(?:\/[a-z0-9._-]+)*(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+:[a-f0-9]{32,128})?$/;

export function parseImageRef(input: string): ImageRef {
  const ref = input.trim().replace(/^docker:\/\//, "");
  if (ref.length === 0 || ref.length > 512 || !REF.test(ref)) {
    throw badRequest(`'${input}' is not an image reference: use [registry[:port]/]name[:tag][@sha256:...], e.g. debian:bookworm or 127.0.0.1:5000/team/app:1`);
  }
  // Docker's rule: the first component names a registry when it has a '.' or ':' or is localhost.
  const first = ref.split("/")[0]!;
  const hasRegistry = ref.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  // Only a registry's name may have capitals; the repository path is lowercase.
  const path = hasRegistry ? ref.slice(first.length + 1) : ref;
  if (/[A-Z]/.test(path.replace(/[:@].*$/, ""))) throw badRequest(`'${input}' is not an image reference: repository names are lowercase`);
  return { ref, registry: hasRegistry ? first : "docker.io" };
}
