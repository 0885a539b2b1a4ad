// Reads an image's manifest and config out of a local OCI image layout (what skopeo copied), as the
// image-spec defines them (image-layout.md: index.json, blobs/<alg>/<hex>; config.md), with caps on
// every file read: the layout came from a registry and is not trusted.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { LAYOUT_TAG } from "./skopeo.ts";

const Descriptor = z.object({ mediaType: z.string().optional(), digest: z.string().regex(/^sha256:[a-f0-9]{64}$/), size: z.number().int().nonnegative(), annotations: z.record(z.string(), z.string()).optional() });
const Index = z.object({ manifests: z.array(Descriptor) });
const Manifest = z.object({ config: Descriptor, layers: z.array(Descriptor) });

/** The fields of an image config (config.md "Properties") a template takes. */
export const ImageConfig = z.object({
  architecture: z.string().optional(),
  os: z.string().optional(),
  config: z
    .object({
      User: z.string().optional(),
      Env: z.array(z.string()).nullish(),
      Entrypoint: z.array(z.string()).nullish(),
      Cmd: z.array(z.string()).nullish(),
      WorkingDir: z.string().optional(),
    })
    .passthrough()
    .nullish(),
});
export type ImageConfig = z.infer<typeof ImageConfig>;

const MAX_JSON_BYTES = 4 * 1024 * 1024;

function readJson<T>(file: string, schema: z.ZodType<T>, what: string): T {
  const size = statSync(file).size;
  if (size > MAX_JSON_BYTES) throw new Error(`the image's ${what} is ${size} bytes; onebox reads at most ${MAX_JSON_BYTES}`);
  const r = schema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!r.success) throw new Error(`the image's ${what} is not valid: ${r.error.issues[0]?.message ?? "?"}`);
  return r.data;
}

function blob(layoutDir: string, digest: string): string {
  return join(layoutDir, "blobs", "sha256", digest.slice("sha256:".length));
}

/** The manifest tagged LAYOUT_TAG in the layout, and its config. */
export function readImage(layoutDir: string): { layers: number; layerBytes: number; config: ImageConfig } {
  const index = readJson(join(layoutDir, "index.json"), Index, "index.json");
  const m = index.manifests.find((d) => d.annotations?.["org.opencontainers.image.ref.name"] === LAYOUT_TAG) ?? (index.manifests.length === 1 ? index.manifests[0] : undefined);
  if (!m) throw new Error(`the OCI layout ${layoutDir} has no image tagged '${LAYOUT_TAG}'`);
  const manifest = readJson(blob(layoutDir, m.digest), Manifest, "manifest");
  const config = readJson(blob(layoutDir, manifest.config.digest), ImageConfig, "config");
  return { layers: manifest.layers.length, layerBytes: manifest.layers.reduce((n, l) => n + l.size, 0), config };
}
