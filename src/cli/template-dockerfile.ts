// `onebox template build --dockerfile FILE --name N`: a single-stage Dockerfile built by the running daemon's build
// API (docs/templates.md "Builds over the API") through the e2b SDK's own Template().fromDockerfile() and
// Template.build(). So the file is parsed exactly as the SDK parses it (FROM, RUN, COPY/ADD, ENV/ARG, WORKDIR,
// USER, CMD/ENTRYPOINT; multi-stage refused), COPY sources are hashed and uploaded from the Dockerfile's directory
// as the SDK does, and the build runs where every build runs: in the daemon's build microVMs, with their network.
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { BuildError, defaultBuildLogger, Template } from "e2b";
import * as glob from "glob";
import * as tar from "tar";

// The SDK loads glob (COPY sources' hashes) and tar (their upload) with an import() its bundlers cannot see
// (e2b's dynamicImport). In dist/onebox there is no node_modules to resolve them from ("Cannot find package
// 'glob' imported from /$bunfs/root/onebox"), so the modules are bundled here and served to those imports.
Bun.plugin({
  name: "e2b-dynamic-imports",
  setup(build) {
    build.module("glob", () => ({ exports: glob, loader: "object" }));
    build.module("tar", () => ({ exports: tar, loader: "object" }));
  },
});

export interface DockerfileBuild {
  file: string;
  name: string;
  url: string;
  key: string;
  cpuCount?: number;
  memoryMB?: number;
  /** Rebuild every step (the SDK's skipCache). */
  noCache?: boolean;
}

/** Builds; returns the exit code after printing the build's logs (and, on failure, the step and why). */
export async function buildFromDockerfile(o: DockerfileBuild): Promise<number> {
  const file = resolve(o.file);
  if (!existsSync(file) || !statSync(file).isFile()) {
    console.error(`onebox template build --dockerfile: ${o.file} is not a file`);
    return 2;
  }
  let template;
  try {
    template = Template({ fileContextPath: dirname(file) }).fromDockerfile(file);
  } catch (e) {
    console.error(`onebox template build --dockerfile: ${o.file}: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
  try {
    const info = await Template.build(template, o.name, {
      apiKey: o.key,
      apiUrl: o.url,
      cpuCount: o.cpuCount,
      memoryMB: o.memoryMB,
      skipCache: o.noCache,
      onBuildLogs: defaultBuildLogger(),
    });
    console.log(`built template ${info.name} (${info.templateId}, build ${info.buildId})`);
    return 0;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    console.error(e instanceof BuildError ? `build failed: ${why}` : `onebox template build --dockerfile: ${why} (is \`onebox serve\` running at ${o.url}?)`);
    return 1;
  }
}
