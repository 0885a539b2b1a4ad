// onebox's own certificate authority for TLS on the data plane (`onebox serve --tls`, issue 15): getHost(port) URLs
// (`https://<port>-<id>.<domain>`) get a certificate signed by it. Made once with Debian's openssl under
// <dataDir>/tls (the key private), and name-constrained to the sandbox domain, so a client that trusts it trusts
// nothing else: even its stolen key cannot sign a certificate for another name that a client would accept.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

export interface Ca {
  dir: string;
  certPath: string;
  keyPath: string;
  /** The one key every leaf certificate carries (made with the CA; leaves differ only in their name). */
  leafKeyPath: string;
  certPem: string;
}

const OPENSSL_TIMEOUT_MS = 10_000;

/** Where the CA's certificate is (public; GET /tls/ca.crt serves it). */
export const caCertPath = (dataDir: string) => join(dataDir, "tls", "ca.crt");

/** Runs openssl with args; throws with its stderr on failure. */
export function openssl(args: string[], cwd: string): string {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe", timeout: OPENSSL_TIMEOUT_MS });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed (${r.exitCode ?? "timeout"}): ${r.stderr.toString().trim().slice(-500)}`);
  return r.stdout.toString();
}

/** The CA under <dataDir>/tls for sandboxHost (the domain's hostname, e.g. `localhost`): loaded, or made when
 *  absent or made for another domain (its name constraint would refuse every leaf). */
export function loadOrMakeCa(dataDir: string, sandboxHost: string): Ca {
  const dir = join(dataDir, "tls");
  const ca: Ca = { dir, certPath: caCertPath(dataDir), keyPath: join(dir, "ca.key"), leafKeyPath: join(dir, "leaf.key"), certPem: "" };
  const domainFile = join(dir, "ca.domain");
  const fresh = [ca.certPath, ca.keyPath, ca.leafKeyPath, domainFile].every(existsSync) && readFileSync(domainFile, "utf8") === sandboxHost;
  if (!fresh) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
      [
        "req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
        "-subj", `/O=onebox/CN=onebox local CA (${hostname().slice(0, 40)})`,
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        // A DNS constraint without a leading dot permits the name itself and every name under it (RFC 5280 4.2.1.10).
        "-addext", `nameConstraints=critical,permitted;DNS:${sandboxHost}`,
      ],
      dir,
    );
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "leaf.key"], dir);
    writeFileSync(domainFile, sandboxHost, { mode: 0o600 });
  }
  for (const f of [ca.keyPath, ca.leafKeyPath, domainFile]) chmodSync(f, 0o600);
  chmodSync(ca.certPath, 0o644); // public: the directory (0700) still keeps others out; GET /tls/ca.crt serves it
  ca.certPem = readFileSync(ca.certPath, "utf8");
  return ca;
}
