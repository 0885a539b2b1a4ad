// What the route modules need from the daemon: config, state, the sandbox manager, admission.
import type { Admission } from "../scheduler/admission.ts";
import type { SandboxManager } from "../sandbox/manager.ts";
import type { State } from "../store/index.ts";
import type { DefaultTemplateBuilder } from "../templates/build-default.ts";
import type { Config } from "../util/config.ts";

export interface ApiDeps {
  config: Config;
  state: State;
  manager: SandboxManager;
  admission: Admission;
  /** Present when the daemon builds the default templates itself (first start). */
  templateBuilds?: DefaultTemplateBuilder;
}

/** The `domain` returned to SDKs: getHost(port) = `<port>-<id>.<domain>` then routes back here by Host (with --tls,
 *  to the TLS listener: E2B code writes `https://` + getHost(port)). */
export function domain(d: ApiDeps): string {
  return d.config.domain ?? `localhost:${d.config.tls ? d.config.tlsPort : d.config.port}`;
}
