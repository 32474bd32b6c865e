// TLS termination by the data plane: SNI picks the certificate, Host picks the route, the default
// certificate covers the rest, HTTP → HTTPS redirects, and a rotated Secret is served on the next handshake
// without a restart.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { request } from "node:https";
import { connect, type PeerCertificate } from "node:tls";
import { after, before, test } from "node:test";
import { generateSelfSignedCertificate } from "@bollard/ingress";
import { type Backend, type Echo, type IngressSpec, startBackend, tableOf, tlsSecret } from "../../../ingress/test/helpers/backends.ts";
import { send } from "../../../ingress/test/helpers/client.ts";
import { defaultCertificate, eachPlane, type RunningPlane } from "../planes.ts";

const fooV1 = generateSelfSignedCertificate("foo.test", ["foo.test"]);
const fooV2 = generateSelfSignedCertificate("foo.test", ["foo.test"]);
const wild = generateSelfSignedCertificate("*.wild.test", ["*.wild.test"]);
const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

/** The certificate the server presents for `servername` (undefined: no SNI at all). */
function peerCertificate(port: number, servername: string | undefined): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on("error", reject);
  });
}

function httpsGet(port: number, servername: string, host: string, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, servername, path, headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on("error", reject)
      .end();
  });
}

/**
 * Whether a second connection resumes the session of a first one that made a request (TLS 1.3 sends its tickets
 * after the handshake, so the first connection reads its answer before its session is taken).
 */
async function resumes(port: number, maxVersion: "TLSv1.2" | "TLSv1.3"): Promise<boolean> {
  const options = { host: "127.0.0.1", port, servername: "foo.test", rejectUnauthorized: false, maxVersion, ALPNProtocols: ["http/1.1"] };
  const session = await new Promise<Buffer | undefined>((resolve, reject) => {
    let latest: Buffer | undefined;
    const socket = connect(options, () => socket.write("GET / HTTP/1.1\r\nhost: foo.test\r\nconnection: close\r\n\r\n"));
    socket.on("session", (s: Buffer) => {
      latest = s;
    });
    socket.on("data", () => {});
    socket.on("close", () => resolve(latest));
    socket.on("error", reject);
  });
  if (session === undefined) return false;
  return new Promise((resolve, reject) => {
    const socket = connect({ ...options, session }, () => {
      resolve(socket.isSessionReused());
      socket.end();
    });
    socket.on("error", reject);
  });
}

eachPlane("TLS", (kind) => {
  let web: Backend;
  let other: Backend;
  let plane: RunningPlane;
  let httpPort: number;
  let httpsPort: number;
  const ingresses = (): IngressSpec[] => [
    {
      name: "secure",
      tls: [
        { hosts: ["foo.test"], secretName: "foo-tls" },
        { hosts: ["*.wild.test"], secretName: "wild-tls" },
        { hosts: ["broken.test"], secretName: "missing-secret" },
      ],
      routes: [
        { host: "foo.test", service: "web", ports: [web.port] },
        { host: "*.wild.test", service: "web", ports: [web.port] },
        { host: "broken.test", service: "web", ports: [web.port] },
      ],
    },
    { name: "plain", annotations: { "bollard.dev/ssl-redirect": "false" }, tls: [{ hosts: ["optout.test"], secretName: "foo-tls" }], routes: [{ host: "optout.test", service: "web", ports: [web.port] }] },
    { name: "other", routes: [{ host: "other.test", service: "other", ports: [other.port] }] },
  ];

  before(async () => {
    web = await startBackend("web");
    other = await startBackend("other");
    plane = await kind.start({}, { https: true });
    httpPort = plane.httpPort;
    httpsPort = plane.httpsPort ?? 0;
    plane.setTable(tableOf(ingresses(), [tlsSecret("foo-tls", fooV1), tlsSecret("wild-tls", wild)]));
  });
  after(async () => {
    await plane.shutdown(1000);
    await web.close();
    await other.close();
  });

  test("SNI picks the certificate: exact, one-label wildcard, and the default for unknown names and for no SNI", async () => {
    assert.equal((await peerCertificate(httpsPort, "foo.test")).fingerprint256, fingerprintOf(fooV1.cert));
    assert.equal((await peerCertificate(httpsPort, "FOO.test")).fingerprint256, fingerprintOf(fooV1.cert));
    assert.equal((await peerCertificate(httpsPort, "a.wild.test")).fingerprint256, fingerprintOf(wild.cert));
    assert.equal((await peerCertificate(httpsPort, "a.b.wild.test")).fingerprint256, fingerprintOf(defaultCertificate.cert));
    assert.equal((await peerCertificate(httpsPort, "unknown.test")).fingerprint256, fingerprintOf(defaultCertificate.cert));
    assert.equal((await peerCertificate(httpsPort, undefined)).fingerprint256, fingerprintOf(defaultCertificate.cert));
  });

  test("a missing Secret gets the default certificate; its route still serves", async () => {
    assert.equal((await peerCertificate(httpsPort, "broken.test")).fingerprint256, fingerprintOf(defaultCertificate.cert));
    assert.equal((await httpsGet(httpsPort, "broken.test", "broken.test")).status, 200);
  });

  test("Host picks the route, whatever the SNI; X-Forwarded-Proto is https", async () => {
    const r = await httpsGet(httpsPort, "foo.test", "other.test");
    assert.equal((JSON.parse(r.body) as Echo).backend, "other");
    const proto = (JSON.parse((await httpsGet(httpsPort, "foo.test", "foo.test")).body) as Echo).headers["x-forwarded-proto"];
    assert.equal(proto, "https");
  });

  test("plain HTTP to a TLS host → 308 to https, unless the Ingress opts out", async () => {
    const r = await send(httpPort, { host: "foo.test", path: "/a/b?c=d" });
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, "https://foo.test/a/b?c=d");
    assert.equal((await send(httpPort, { host: "optout.test" })).status, 200);
    assert.equal((await send(httpPort, { host: "other.test" })).status, 200);
  });

  test("with httpsRedirectPort (`--https-redirect-port`), the redirect names that port, whatever port the client used", async () => {
    const elsewhere = await kind.start({ httpsRedirectPort: 8443 });
    try {
      elsewhere.setTable(tableOf(ingresses(), [tlsSecret("foo-tls", fooV1), tlsSecret("wild-tls", wild)]));
      const r = await send(elsewhere.httpPort, { host: "Foo.test:8080", path: "/a?b" });
      assert.equal(r.status, 308);
      assert.equal(r.headers.location, "https://foo.test:8443/a?b");
    } finally {
      await elsewhere.shutdown(1000);
    }
  });

  test("a certificate that is not valid for a host it is listed for is served for it anyway", async () => {
    // optout.test lists foo-tls, whose only name is foo.test (the compiler reports CertificateHostMismatch).
    assert.equal((await peerCertificate(httpsPort, "optout.test")).fingerprint256, fingerprintOf(fooV1.cert));
  });

  test("a rotated Secret is served on the next handshake, with no restart", async () => {
    plane.setTable(tableOf(ingresses(), [tlsSecret("foo-tls", fooV2), tlsSecret("wild-tls", wild)]));
    assert.equal((await peerCertificate(httpsPort, "foo.test")).fingerprint256, fingerprintOf(fooV2.cert));
    assert.equal((await httpsGet(httpsPort, "foo.test", "foo.test")).status, 200);
    plane.setTable(tableOf(ingresses(), [tlsSecret("foo-tls", fooV1), tlsSecret("wild-tls", wild)]));
  });

  test("sessions resume (TLS 1.2 session ids, TLS 1.3 tickets); with tlsSessionResumption false every connection makes a full handshake", async () => {
    assert.equal(await resumes(httpsPort, "TLSv1.3"), true);
    assert.equal(await resumes(httpsPort, "TLSv1.2"), true);
    const full = await kind.start({ tlsSessionResumption: false }, { https: true });
    try {
      full.setTable(tableOf(ingresses(), [tlsSecret("foo-tls", fooV1), tlsSecret("wild-tls", wild)]));
      assert.equal(await resumes(full.httpsPort ?? 0, "TLSv1.3"), false);
      assert.equal(await resumes(full.httpsPort ?? 0, "TLSv1.2"), false);
    } finally {
      await full.shutdown(1000);
    }
  });

  test("--default-ssl-certificate replaces the generated certificate, also for clients without SNI", async () => {
    const table = tableOf(ingresses(), [tlsSecret("foo-tls", fooV1), tlsSecret("wild-tls", wild)], { defaultCertificate: { namespace: "default", name: "wild-tls" } });
    plane.setTable(table);
    assert.equal((await peerCertificate(httpsPort, "unknown.test")).fingerprint256, fingerprintOf(wild.cert));
    assert.equal((await peerCertificate(httpsPort, undefined)).fingerprint256, fingerprintOf(wild.cert));
    plane.setTable(tableOf(ingresses(), [tlsSecret("foo-tls", fooV1), tlsSecret("wild-tls", wild)]));
    assert.equal((await peerCertificate(httpsPort, undefined)).fingerprint256, fingerprintOf(defaultCertificate.cert));
  });
});
