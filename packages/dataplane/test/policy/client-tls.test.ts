// Client certificates through the real proxy: a CA and client certificates made here, a host whose routes ask
// for them (on, optional, off), checked per request; the upstream sees what ingress-nginx sends. A client
// certificate issued by an intermediate CA passes only with auth-tls-verify-depth 2 or more.
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { request } from "node:https";
import { after, before, test } from "node:test";
import forge from "node-forge";
import { generateSelfSignedCertificate } from "@bollard/ingress";
import type { Secret } from "../../../ingress/src/index.ts";
import { type Backend, type Echo, startBackend, tableOf, tlsSecret } from "../../../ingress/test/helpers/backends.ts";
import { send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";

interface Issued {
  cert: string;
  key: string;
}

/** A certificate for `cn`, signed by `issuer` (self-signed when none): a CA, or a client certificate. */
function issue(cn: string, issuer: Issued | null, ca: boolean): Issued {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const key = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString());
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  cert.serialNumber = serial.toString("hex");
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  cert.setSubject([{ name: "commonName", value: cn }, { name: "organizationName", value: "Bollard, Test" }]);
  cert.setIssuer(issuer === null ? cert.subject.attributes : forge.pki.certificateFromPem(issuer.cert).subject.attributes);
  cert.setExtensions(
    ca
      ? [{ name: "basicConstraints", cA: true }, { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true }]
      : [{ name: "basicConstraints", cA: false }, { name: "keyUsage", digitalSignature: true, keyEncipherment: true }, { name: "extKeyUsage", clientAuth: true }],
  );
  cert.sign(forge.pki.privateKeyFromPem((issuer ?? { key }).key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key };
}

const caSecret = (name: string, ca: string): Secret => ({ metadata: { name, namespace: "default" }, data: { "ca.crt": Buffer.from(ca).toString("base64") } });

function get(port: number, host: string, path: string, client?: Issued): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, servername: host, headers: { host }, rejectUnauthorized: false, agent: false, ...(client ?? {}) }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

eachPlane("policy: client certificates", (kind) => {
  const ca = issue("Test CA", null, true);
  const alice = issue("alice", ca, false);
  const stranger = issue("stranger", issue("Other CA", null, true), false);
  const intermediate = issue("Intermediate CA", ca, true);
  const carol = issue("carol", intermediate, false);
  /** carol's certificate with the intermediate's: the chain a client sends (the CA Secret holds only the root) */
  const carolChain = { cert: carol.cert + intermediate.cert, key: carol.key };
  const server = generateSelfSignedCertificate("mtls.test", ["mtls.test", "opt.test", "off.test", "nocas.test", "depth1.test", "depth2.test"]);
  let app: Backend;
  let plane: RunningPlane;
  before(async () => {
    app = await startBackend("app");
    plane = await kind.start({}, { https: true });
    const host = (name: string, annotations: Record<string, string>) => ({
      name,
      annotations: { [`${P}/ssl-redirect`]: "false", ...annotations },
      tls: [{ hosts: [`${name}.test`], secretName: "server" }],
      routes: [{ host: `${name}.test`, path: "/", service: "app", ports: [app.port] }],
    });
    plane.setTable(
      tableOf(
        [
          host("mtls", { [`${P}/auth-tls-secret`]: "default/ca", [`${P}/auth-tls-pass-certificate-to-upstream`]: "true" }),
          host("opt", { [`${P}/auth-tls-secret`]: "ca", [`${P}/auth-tls-verify-client`]: "optional", [`${P}/auth-tls-error-page`]: "https://errors.test/cert" }),
          host("off", { [`${P}/auth-tls-secret`]: "ca", [`${P}/auth-tls-verify-client`]: "off" }),
          host("nocas", { [`${P}/auth-tls-secret`]: "missing" }),
          host("depth1", { [`${P}/auth-tls-secret`]: "ca", [`${P}/auth-tls-verify-depth`]: "1" }),
          host("depth2", { [`${P}/auth-tls-secret`]: "ca", [`${P}/auth-tls-verify-depth`]: "2" }),
        ],
        [tlsSecret("server", server), caSecret("ca", ca.cert)],
      ),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await app.close();
  });

  test("on: a certificate of the CA is forwarded with ssl-client-* (the certificate URL-encoded PEM)", async () => {
    const r = await get(plane.httpsPort as number, "mtls.test", "/x", alice);
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body) as Echo;
    assert.equal(echo.headers["ssl-client-verify"], "SUCCESS");
    // RFC 2253: the last RDN of the DER first (the certificates name CN, then O)
    assert.equal(echo.headers["ssl-client-subject-dn"], "O=Bollard\\, Test,CN=alice");
    assert.equal(echo.headers["ssl-client-issuer-dn"], "O=Bollard\\, Test,CN=Test CA");
    const pem = decodeURIComponent(String(echo.headers["ssl-client-cert"]));
    assert.equal(pem.trim(), alice.cert.trim().replace(/\r\n/g, "\n"));
  });

  test("on: no certificate, or one of another CA, is 400 and never forwarded; a forged ssl-client-verify goes nowhere", async () => {
    const before = app.requests;
    assert.equal((await get(plane.httpsPort as number, "mtls.test", "/x")).status, 400);
    assert.equal((await get(plane.httpsPort as number, "mtls.test", "/x", stranger)).status, 400);
    const plain = await send(plane.httpPort, { host: "mtls.test", path: "/x", headers: { "ssl-client-verify": "SUCCESS" } });
    assert.equal(plain.status, 400, "plain HTTP shows no certificate");
    assert.equal(app.requests, before);
  });

  test("optional: no certificate is forwarded as NONE; a bad one goes to the error page", async () => {
    const none = await get(plane.httpsPort as number, "opt.test", "/x");
    assert.equal(none.status, 200);
    assert.equal((JSON.parse(none.body) as Echo).headers["ssl-client-verify"], "NONE");
    const bad = await get(plane.httpsPort as number, "opt.test", "/x", stranger);
    assert.equal(bad.status, 302);
    assert.equal(bad.headers.location, "https://errors.test/cert");
  });

  test("off: no certificate asked, none checked", async () => {
    const r = await get(plane.httpsPort as number, "off.test", "/x");
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as Echo).headers["ssl-client-verify"], undefined);
  });

  test("auth-tls-verify-depth: a certificate of an intermediate CA needs depth 2; depth 1 takes only the CA's own", async () => {
    const port = plane.httpsPort as number;
    const before = app.requests;
    assert.equal((await get(port, "depth1.test", "/x", carolChain)).status, 400);
    // (the default depth is 1 too)
    assert.equal((await get(port, "mtls.test", "/x", carolChain)).status, 400);
    assert.equal(app.requests, before);
    const r = await get(port, "depth2.test", "/x", carolChain);
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body) as Echo;
    assert.equal(echo.headers["ssl-client-verify"], "SUCCESS");
    assert.equal(echo.headers["ssl-client-issuer-dn"], "O=Bollard\\, Test,CN=Intermediate CA");
    // a certificate issued by the root directly passes at either depth
    assert.equal((await get(port, "depth1.test", "/x", alice)).status, 200);
    assert.equal((await get(port, "depth2.test", "/x", alice)).status, 200);
    // without the intermediate no chain reaches the root, whatever the depth
    assert.equal((await get(port, "depth2.test", "/x", carol)).status, 400);
  });

  test("a CA Secret that does not exist fails closed: 503", async () => {
    const before = app.requests;
    assert.equal((await get(plane.httpsPort as number, "nocas.test", "/x", alice)).status, 503);
    assert.equal(app.requests, before);
  });
});
