// Leaf certificates for the TLS data plane, one per getHost() name, made at the handshake (SNI) and cached: one
// wildcard cannot serve them, as `*.localhost` has a single label under the wildcard, which TLS clients refuse
// (Bun and Node: ERR_TLS_CERT_ALTNAME_INVALID). Only names of live sandboxes are signed, at most a few at once,
// so a client cannot make the daemon sign (or spawn openssl for) names of its choosing.
import { createSecureContext, type SecureContext } from "node:tls";
import { readFileSync } from "node:fs";
import { log } from "../util/log.ts";
import { sandboxPortOf } from "./dispatch.ts";
import type { Ca } from "./tls-ca.ts";

const CACHE_MAX = 1024;
const MINTS_AT_ONCE = 4;
const LEAF_DAYS = 30;
const MINT_TIMEOUT_MS = 10_000;
/** A cached leaf is made again this long before it expires. */
const RENEW_MS = 7 * 86_400_000;

export class LeafCerts {
  private cache = new Map<string, { ctx: SecureContext; until: number }>();
  private minting = new Map<string, Promise<SecureContext | null>>();
  private readonly key: Buffer;

  /** sandboxHost: the hostname getHost() names are under; isLive(id): whether a sandbox of that id exists. */
  constructor(
    private readonly ca: Ca,
    private readonly sandboxHost: string,
    private readonly isLive: (sandboxId: string) => boolean,
  ) {
    this.key = readFileSync(ca.leafKeyPath);
  }

  /** The context for servername, or null (a name that is not `<port>-<live id>.<domain>`: no certificate). */
  async context(servername: string): Promise<SecureContext | null> {
    const name = servername.toLowerCase();
    const target = sandboxPortOf(name, this.sandboxHost);
    if (!target || !this.isLive(target.sandboxId)) return null;
    const hit = this.cache.get(name);
    if (hit && hit.until > Date.now()) {
      this.cache.delete(name); // most recently used last
      this.cache.set(name, hit);
      return hit.ctx;
    }
    const inFlight = this.minting.get(name);
    if (inFlight) return inFlight;
    if (this.minting.size >= MINTS_AT_ONCE) return null;
    const p = this.mint(name).finally(() => this.minting.delete(name));
    this.minting.set(name, p);
    return p;
  }

  private async mint(name: string): Promise<SecureContext | null> {
    const args = [
      "req", "-x509", "-new", "-key", this.ca.leafKeyPath, "-CA", this.ca.certPath, "-CAkey", this.ca.keyPath,
      "-subj", `/CN=${name}`, "-days", String(LEAF_DAYS),
      "-addext", `subjectAltName=DNS:${name}`,
      "-addext", "basicConstraints=critical,CA:FALSE",
      "-addext", "extendedKeyUsage=serverAuth",
    ];
    const p = Bun.spawn(["openssl", ...args], { cwd: this.ca.dir, stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: MINT_TIMEOUT_MS });
    const [cert, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    if (code !== 0) {
      log.warn("tls: could not sign a certificate", { name, error: (await new Response(p.stderr).text()).trim().slice(-300) });
      return null;
    }
    const ctx = createSecureContext({ key: this.key, cert: cert + this.ca.certPem });
    this.cache.set(name, { ctx, until: Date.now() + LEAF_DAYS * 86_400_000 - RENEW_MS });
    while (this.cache.size > CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    return ctx;
  }
}
