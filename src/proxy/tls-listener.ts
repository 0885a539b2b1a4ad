// The TLS data plane (`onebox serve --tls`, issue 15): a TLS listener whose connections, once decrypted, go to the
// daemon's own HTTP listener unchanged (Host included), so routing, auth, limits and WebSockets are the plain
// port's, with nothing to keep in step. Each handshake's certificate comes from LeafCerts (the SNI name).
import { connect } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { log } from "../util/log.ts";
import type { LeafCerts } from "./tls-certs.ts";

/** A handshake that has not finished by then is dropped (a client that opens and sends nothing). */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TlsListener {
  port: number;
  stop(): Promise<void>;
}

/** Listens on listen:port; each decrypted connection is piped to the HTTP listener at upstream. */
export async function startTlsListener(
  listen: string,
  port: number,
  upstream: { host: string; port: number },
  certs: LeafCerts,
  maxConnections: number,
): Promise<TlsListener> {
  const open = new Set<TLSSocket>();
  const server: Server = createServer(
    {
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      SNICallback: (name, cb) => {
        certs.context(name).then(
          (ctx) => (ctx ? cb(null, ctx) : cb(new Error(`no certificate for ${name}`))),
          (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
        );
      },
    },
    (tlsSock: TLSSocket) => {
      const up = connect(upstream.port, upstream.host);
      open.add(tlsSock);
      const end = () => {
        open.delete(tlsSock);
        tlsSock.destroy();
        up.destroy();
      };
      tlsSock.on("error", end).on("close", end);
      up.on("error", end).on("close", end);
      tlsSock.pipe(up);
      up.pipe(tlsSock);
    },
  );
  server.maxConnections = maxConnections;
  // A failed handshake (no SNI, a name that is not a live sandbox's, a client that distrusts the CA) is the
  // client's business: logged at debug level only, it must not be an error of the daemon's.
  server.on("tlsClientError", (e) => log.debug("tls: handshake failed", { error: e.message }));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, listen, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // After the listen, an error (accept failing for want of file descriptors) is logged: unhandled, it would end the
  // daemon, and every sandbox's API with it.
  server.on("error", (e) => log.warn("tls: listener error", { error: e.message }));
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr ? addr.port : port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy(); // kept-alive and streaming connections would hold close() forever
      }),
  };
}
