// `onebox serve --tls`: onebox's CA, certificates per getHost() name, and the TLS listener, put together.
import type { Config } from "../util/config.ts";
import { log } from "../util/log.ts";
import { hostnameOf } from "./dispatch.ts";
import { loadOrMakeCa } from "./tls-ca.ts";
import { LeafCerts } from "./tls-certs.ts";
import { startTlsListener } from "./tls-listener.ts";

export interface DataPlaneTls {
  port: number;
  caPath: string;
  caPem: string;
  stop(): Promise<void>;
}

/** Starts TLS for config (after the HTTP listener, whose bound port it forwards to). isLive: a sandbox id exists. */
export async function startTls(config: Config, isLive: (sandboxId: string) => boolean): Promise<DataPlaneTls> {
  const sandboxHost = hostnameOf(config.domain ?? "localhost");
  const ca = loadOrMakeCa(config.dataDir, sandboxHost);
  const certs = new LeafCerts(ca, sandboxHost, isLive);
  // The decrypted bytes go to the HTTP listener over loopback when it listens on every address.
  const any = config.listen === "0.0.0.0" || config.listen === "::";
  const upstream = { host: any ? "127.0.0.1" : config.listen, port: config.port };
  const l = await startTlsListener(config.listen, config.tlsPort, upstream, certs, config.maxConnections);
  // The domain returned to SDKs names the bound port (--tls-port 0 in tests).
  config.tlsPort = l.port;
  log.info("tls: data plane listening", { port: l.port, ca: ca.certPath, names: `<port>-<sandbox id>.${sandboxHost}` });
  return { port: l.port, caPath: ca.certPath, caPem: ca.certPem, stop: l.stop };
}
