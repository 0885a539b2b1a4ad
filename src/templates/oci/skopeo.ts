// The registry side of an OCI build, done by Debian's skopeo (docs/templates.md "Templates from OCI
// images"): what the manifest says (layers, sizes) before anything is downloaded, then a copy of the
// linux/amd64 image into a local OCI layout that umoci unpacks.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { badRequest } from "../../util/errors.ts";
import type { StepRun } from "../build-steps.ts";
import type { ImageRef } from "./image-ref.ts";
import { mib, type OciLimits } from "./limits.ts";

export interface RegistryAccess {
  username?: string;
  password?: string;
  /** Plain HTTP or a certificate that does not verify (a registry on 127.0.0.1, a lab registry). */
  insecure?: boolean;
}

/** onebox verifies no image signatures: skopeo's trust policy says so explicitly, rather than
 *  depending on whatever /etc/containers/policy.json the host has (or lacks). */
const POLICY = { default: [{ type: "insecureAcceptAnything" }] };

/** The tag of the image inside the local OCI layout. */
export const LAYOUT_TAG = "onebox";

/** Writes skopeo's files into dir (the build's private dir): the policy and, with credentials, an
 *  auth file (0600, removed with the dir), so that no password is ever on a command line or in the log. */
export function skopeoFiles(dir: string, image: ImageRef, access: RegistryAccess): { policy: string; authfile?: string } {
  const policy = join(dir, "policy.json");
  writeFileSync(policy, JSON.stringify(POLICY), { mode: 0o600 });
  if (access.username === undefined && access.password === undefined) return { policy };
  if (!access.username || access.password === undefined) throw badRequest("--registry-user and --registry-password go together");
  const authfile = join(dir, "auth.json");
  const auth = Buffer.from(`${access.username}:${access.password}`).toString("base64");
  writeFileSync(authfile, JSON.stringify({ auths: { [image.registry]: { auth } } }), { mode: 0o600 });
  return { policy, authfile };
}

const PLATFORM = ["--override-os", "linux", "--override-arch", "amd64"];

/** `skopeo inspect --raw`: the manifest (or index) as the registry serves it; ref may carry a digest. */
export function inspectArgv(ref: string, access: RegistryAccess, files: { policy: string; authfile?: string }): string[] {
  return ["skopeo", "--policy", files.policy, "inspect", "--raw", "--retry-times", "2", ...(files.authfile ? ["--authfile", files.authfile] : ["--no-creds"]), ...(access.insecure ? ["--tls-verify=false"] : []), `docker://${ref}`];
}

export function copyArgv(image: ImageRef, access: RegistryAccess, files: { policy: string; authfile?: string }, layoutDir: string): string[] {
  return ["skopeo", "--policy", files.policy, ...PLATFORM, "copy", "--retry-times", "2", ...(files.authfile ? ["--src-authfile", files.authfile] : ["--src-no-creds"]), ...(access.insecure ? ["--src-tls-verify=false"] : []), `docker://${image.ref}`, `oci:${layoutDir}:${LAYOUT_TAG}`];
}

const INDEX_TYPES = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

/** A manifest or an index (image-spec manifest.md, image-index.md; Docker's schema 2 has the same fields). */
interface RawManifest {
  mediaType?: string;
  manifests?: { digest?: string; platform?: { os?: string; architecture?: string } }[];
  layers?: { size?: number }[];
}

function parseManifest(text: string, image: ImageRef): RawManifest {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === "object" && v !== null) return v as RawManifest;
  } catch {
    // below
  }
  throw new Error(`the registry's manifest for ${image.ref} is not JSON`);
}

/** Checks the image's manifest against the caps before anything else is downloaded (an index: its
 *  linux/amd64 entry). Layer sizes are as the manifest states them; the copy is checked again. */
export async function inspectImage(run: StepRun, image: ImageRef, access: RegistryAccess, files: { policy: string; authfile?: string }, limits: OciLimits): Promise<{ layers: number; bytes: number }> {
  let m = parseManifest(await run.capture(inspectArgv(image.ref, access, files), { label: "skopeo inspect" }), image);
  if (m.manifests && (INDEX_TYPES.includes(m.mediaType ?? "") || !m.layers)) {
    const entry = m.manifests.find((d) => d.platform?.os === "linux" && d.platform?.architecture === "amd64");
    if (!entry?.digest) {
      const have = m.manifests.map((d) => `${d.platform?.os}/${d.platform?.architecture}`).join(", ");
      throw badRequest(`${image.ref} has no linux/amd64 image (it has ${have || "none"})`);
    }
    const repo = image.ref.replace(/@.*$/, "").replace(/:[\w][\w.-]*$/, "");
    m = parseManifest(await run.capture(inspectArgv(`${repo}@${entry.digest}`, access, files), { label: "skopeo inspect" }), image);
  }
  const layers = m.layers ?? [];
  const bytes = layers.reduce((n, l) => n + (l.size ?? 0), 0);
  if (layers.length > limits.maxLayers) throw badRequest(`${image.ref} has ${layers.length} layers; the cap is ${limits.maxLayers} (--max-layers)`);
  if (bytes > limits.maxImageBytes) throw badRequest(`${image.ref} is ${mib(bytes)} compressed; the cap is ${mib(limits.maxImageBytes)} (--max-image-mib)`);
  return { layers: layers.length, bytes };
}
