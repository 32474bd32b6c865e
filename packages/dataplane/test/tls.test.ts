// TLS and HTTP/2 on the native plane's HTTPS listener: SNI picks the certificate (exact, wildcard, the
// default), Host picks the route, a rotated Secret is served on the next handshake, h2 by ALPN reaches the
// same backends with its stream limit, and a rapid-reset burst leaves other clients served.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { type ClientHttp2Session, connect as connectH2, constants } from "node:http2";
import { request } from "node:https";
import { connect, type PeerCertificate } from "node:tls";
import { after, before, describe, test } from "node:test";
import { generateDefaultCertificate, generateSelfSignedCertificate } from "@bollard/ingress";
import { type Backend, type Echo, type IngressSpec, startBackend, tableOf, tlsSecret } from "../../ingress/test/helpers/backends.ts";
import { send } from "../../ingress/test/helpers/client.ts";
import { createDataPlane, type DataPlane } from "../src/index.ts";

const defaultCertificate = generateDefaultCertificate();
const fooV1 = generateSelfSignedCertificate("foo.test", ["foo.test"]);
const fooV2 = generateSelfSignedCertificate("foo.test", ["foo.test"]);
const wild = generateSelfSignedCertificate("*.wild.test", ["*.wild.test"]);
const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

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

function httpsGet(port: number, servername: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, servername, path: "/", headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
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

function openSession(port: number, servername = "foo.test"): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connectH2(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
    session.once("remoteSettings", () => resolve(session));
    session.once("error", reject);
  });
}

function h2Get(session: ClientHttp2Session, authority: string, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "GET", ":path": path, ":authority": authority });
    let status = 0;
    let body = "";
    stream.on("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.setEncoding("utf8");
    stream.on("data", (c: string) => {
      body += c;
    });
    stream.on("end", () => resolve({ status, body }));
    stream.on("error", reject);
  });
}

describe("TLS and HTTP/2", () => {
  let web: Backend;
  let other: Backend;
  let plane: DataPlane;
  let httpPort: number;
  let httpsPort: number;
  const ingresses = (): IngressSpec[] => [
    {
      name: "secure",
      tls: [
        { hosts: ["foo.test"], secretName: "foo-tls" },
        { hosts: ["*.wild.test"], secretName: "wild-tls" },
      ],
      routes: [
        { host: "foo.test", service: "web", ports: [web.port] },
        { host: "*.wild.test", service: "web", ports: [web.port] },
        { host: "other.test", service: "other", ports: [other.port] },
      ],
    },
  ];
  before(async () => {
    web = await startBackend("web");
    other = await startBackend("other");
    plane = createDataPlane({ defaultCertificate });
    ({ httpPort, httpsPort } = plane.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: 0, workers: 2 }) as { httpPort: number; httpsPort: number });
    plane.setTable(tableOf(ingresses(), [tlsSecret("foo-tls", fooV1), tlsSecret("wild-tls", wild)]));
  });
  after(async () => {
    await plane.shutdown(1000);
    await web.close();
    await other.close();
  });

  test("SNI picks the certificate: exact, then one-label wildcard, else the default", async () => {
    assert.equal((await peerCertificate(httpsPort, "foo.test")).fingerprint256, fingerprintOf(fooV1.cert));
    assert.equal((await peerCertificate(httpsPort, "a.wild.test")).fingerprint256, fingerprintOf(wild.cert));
    assert.equal((await peerCertificate(httpsPort, "a.b.wild.test")).fingerprint256, fingerprintOf(defaultCertificate.cert));
    assert.equal((await peerCertificate(httpsPort, undefined)).fingerprint256, fingerprintOf(defaultCertificate.cert));
  });

  test("Host picks the route, whatever the SNI; X-Forwarded-Proto is https", async () => {
    const r = await httpsGet(httpsPort, "foo.test", "other.test");
    assert.equal((JSON.parse(r.body) as Echo).backend, "other");
    const echo = JSON.parse((await httpsGet(httpsPort, "foo.test", "foo.test")).body) as Echo;
    assert.equal(echo.headers["x-forwarded-proto"], "https");
  });

  test("plain HTTP to a TLS host → 308 to https", async () => {
    const r = await send(httpPort, { host: "foo.test", path: "/a/b?c=d" });
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, "https://foo.test/a/b?c=d");
  });

  test("a rotated Secret is served on the next handshake", async () => {
    plane.setTable(tableOf(ingresses(), [tlsSecret("foo-tls", fooV2), tlsSecret("wild-tls", wild)]));
    assert.equal((await peerCertificate(httpsPort, "foo.test")).fingerprint256, fingerprintOf(fooV2.cert));
  });

  test("h2 by ALPN: :authority routes, the upstream gets a Host line, 128 concurrent streams at most", async () => {
    const session = await openSession(httpsPort);
    try {
      assert.equal(session.alpnProtocol, "h2");
      assert.equal(session.remoteSettings.maxConcurrentStreams, 128);
      const r = await h2Get(session, "other.test", "/x?y=1");
      assert.equal(r.status, 200);
      const echo = JSON.parse(r.body) as Echo;
      assert.equal(echo.backend, "other");
      assert.equal(echo.headers.host, "other.test");
      assert.equal(echo.url, "/x?y=1");
      assert.equal((await h2Get(session, "nowhere.test")).status, 404);
      assert.equal((await h2Get(session, "foo.test", "/%zz")).status, 400);
    } finally {
      session.close();
    }
  });

  test("rapid reset: a client opening and cancelling streams in a burst does not stop other clients", async () => {
    const attacker = await openSession(httpsPort);
    attacker.on("error", () => {});
    for (let i = 0; i < 2000 && !attacker.destroyed && !attacker.closed; i++) {
      try {
        const stream = attacker.request({ ":method": "GET", ":path": "/", ":authority": "foo.test" });
        stream.on("error", () => {});
        stream.close(constants.NGHTTP2_CANCEL);
      } catch {
        break; // the server sent GOAWAY: the session takes no more streams
      }
    }
    const victim = await openSession(httpsPort);
    try {
      assert.equal((await h2Get(victim, "foo.test")).status, 200);
    } finally {
      victim.close();
      attacker.destroy();
    }
  });
});
