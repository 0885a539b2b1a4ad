// Tests `onebox serve --tls` on a real daemon: getHost()-style https URLs reach the data plane with a certificate
// signed at the handshake by onebox's name-constrained CA; other names get no certificate; the CA is public.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:tls";
import { startTestDaemon, type TestDaemon } from "../api/test-support.ts";
import { openssl } from "./tls-ca.ts";

let d: TestDaemon;
let ca = "";
const ID = "tls0x";

beforeAll(async () => {
  d = await startTestDaemon({ tls: true, tlsPort: 0 });
  // A running sandbox row without a VM: its ports answer 502 from the data plane, which is what shows the routing.
  d.state.sandboxes.insert({
    id: ID, templateId: "t", state: "running", cpuCount: 1, memoryMb: 128, diskSizeMb: 256, envdVersion: "0.6.13",
    envdAccessToken: "tok", metadata: "{}", envVars: "{}", secure: true, startedAt: Date.now(), endAt: Date.now() + 3_600_000,
  });
  ca = await (await fetch(`${d.url}/tls/ca.crt`)).text(); // no key needed: the CA certificate is public
});
afterAll(() => d.stop());

/** The TLS handshake's outcome for servername: the peer certificate's subject name, or the error. */
function handshake(servername: string | undefined): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port: d.config.tlsPort, servername, ca, rejectUnauthorized: true }, () => {
      resolve(`ok ${s.getPeerCertificate().subject?.CN}`);
      s.destroy();
    });
    s.on("error", (e) => resolve(`error ${e.message}`));
  });
}

test("the returned domain names the TLS port, and https://<port>-<id>.localhost reaches the sandbox's port through the data plane", async () => {
  expect(ca).toStartWith("-----BEGIN CERTIFICATE-----");
  expect(d.config.tlsPort).toBeGreaterThan(0);
  const url = `https://8000-${ID}.localhost:${d.config.tlsPort}/`;
  // Past TLS, the plain listener routed it by Host to the sandbox's port 8000, with the data plane's checks: the
  // secure sandbox's token first, then (no VM here) 502 as E2B answers for a sandbox it cannot reach.
  const noToken = await fetch(url, { tls: { ca } });
  expect(noToken.status).toBe(401);
  expect(((await noToken.json()) as { message: string }).message).toContain(`sandbox ${ID} is secure`);
  const res = await fetch(url, { tls: { ca }, headers: { "X-Access-Token": "tok" } });
  expect(res.status).toBe(502);
  expect(((await res.json()) as { message: string }).message).toBe("The sandbox was not found"); // E2B's words for it
  expect(await handshake(`8000-${ID}.localhost`)).toBe(`ok 8000-${ID}.localhost`);
});

test("no certificate for a name that is not a live sandbox's port: another domain, an unknown or ended id, no SNI", async () => {
  d.state.sandboxes.insert({
    id: "tlsended", templateId: "t", state: "ended", cpuCount: 1, memoryMb: 128, diskSizeMb: 256, envdVersion: "0.6.13",
    envdAccessToken: "tok", metadata: "{}", envVars: "{}", secure: true, startedAt: Date.now(), endAt: Date.now(),
  });
  for (const name of ["example.com", `8000-${ID}.example.com`, "8000-nosuchid.localhost", "8000-tlsended.localhost", "localhost", `99999-${ID}.localhost`, undefined]) {
    expect(await handshake(name)).toStartWith("error ");
  }
});

test("the CA can sign for the sandbox domain only (name constraint), and its keys are private", async () => {
  const dir = join(d.dataDir, "tls");
  openssl(["req", "-x509", "-new", "-key", "leaf.key", "-CA", "ca.crt", "-CAkey", "ca.key", "-subj", "/CN=evil.example", "-addext", "subjectAltName=DNS:evil.example", "-out", "evil.crt"], dir);
  const r = Bun.spawnSync(["openssl", "verify", "-CAfile", "ca.crt", "evil.crt"], { cwd: dir, stderr: "pipe", stdout: "pipe" });
  expect(r.exitCode).not.toBe(0);
  expect(r.stdout.toString() + r.stderr.toString()).toContain("permitted subtree violation");
  for (const f of ["ca.key", "leaf.key"]) expect(statSync(join(dir, f)).mode & 0o077).toBe(0);
  expect(statSync(dir).mode & 0o077).toBe(0);
});
