// ssl-passthrough through the real proxy: a TLS backend with its own certificate behind a passthrough Ingress is
// reached unterminated on the proxy's HTTPS port; other hosts on the same listener keep the proxy's certificate
// and routing; plain HTTP to the passthrough host is served by the Ingress's rules; a dead backend closes.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { request, createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { type AddressInfo, createServer as createNetServer, connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { after, before, test } from "node:test";
import { generateSelfSignedCertificate, type RouteTable } from "@bollard/ingress";
import { type Backend, deadPort, type Echo, startBackend, tableOf, tlsSecret } from "../../../ingress/test/helpers/backends.ts";
import { json, rawExchange, send } from "../../../ingress/test/helpers/client.ts";
import { defaultCertificate, eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** GET over TLS to the proxy's HTTPS port with this SNI: the answer and the certificate the client was shown. */
function get(port: number, servername: string, path: string): Promise<{ status: number; body: string; certificate: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, servername, headers: { host: servername }, rejectUnauthorized: false, agent: false }, (res) => {
      const certificate = (res.socket as import("node:tls").TLSSocket).getPeerCertificate().fingerprint256;
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, certificate }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A TLS connection attempt with this SNI: how it ended (a handshake, or closed before one). */
function handshake(port: number, servername: string): Promise<{ certificate: string } | { closed: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
    socket.on("secureConnect", () => {
      resolve({ certificate: socket.getPeerCertificate().fingerprint256 });
      socket.destroy();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => resolve({ closed: err.code ?? err.message }));
  });
}

eachPlane("policy: ssl-passthrough", (kind) => {
  const backendPair = generateSelfSignedCertificate("pass.test", ["pass.test", "a.wild.test", "retry.test"]);
  const proxyPair = generateSelfSignedCertificate("web.test", ["web.test", "pass.test"]);
  let tlsApp: HttpsServer;
  let tlsPort: number;
  let app: Backend;
  let plane: RunningPlane;
  let dead: number;
  let table: RouteTable;

  before(async () => {
    tlsApp = createHttpsServer({ cert: backendPair.cert, key: backendPair.key }, (req, res) => {
      const servername = (req.socket as import("node:tls").TLSSocket).servername;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ backend: "tls-app", servername, url: req.url }));
    });
    await new Promise<void>((resolve) => tlsApp.listen(0, "127.0.0.1", resolve));
    tlsPort = (tlsApp.address() as AddressInfo).port;
    app = await startBackend("app");
    dead = await deadPort();
    plane = await kind.start({}, { https: true });
    table = tableOf(
      [
        {
          name: "pass",
          annotations: { [`${P}/ssl-passthrough`]: "true" },
          routes: [
            { host: "pass.test", path: "/", service: "tls-app", ports: [tlsPort] },
            { host: "pass.test", path: "/plain", service: "app", ports: [app.port] },
            { host: "*.wild.test", path: "/", service: "tls-app", ports: [tlsPort] },
            { host: "dead.test", path: "/", service: "gone", ports: [dead, dead] },
            { host: "retry.test", path: "/", service: "half", ports: [dead, tlsPort] },
          ],
        },
        { name: "web", tls: [{ hosts: ["web.test"], secretName: "web" }], annotations: { [`${P}/ssl-redirect`]: "false" }, routes: [{ host: "web.test", path: "/", service: "app", ports: [app.port] }] },
        // security annotations on passthrough Ingresses: source ranges on the peer address, auth refuses
        { name: "allowed", annotations: { [`${P}/ssl-passthrough`]: "true", [`${P}/allowlist-source-range`]: "127.0.0.0/8" }, routes: [{ host: "allowed.test", path: "/", service: "tls-app", ports: [tlsPort] }] },
        { name: "fenced", annotations: { [`${P}/ssl-passthrough`]: "true", [`${P}/allowlist-source-range`]: "192.0.2.0/24" }, routes: [{ host: "fenced.test", path: "/", service: "tls-app", ports: [tlsPort] }] },
        {
          name: "locked",
          annotations: { [`${P}/ssl-passthrough`]: "true", [`${P}/auth-type`]: "basic", [`${P}/auth-secret`]: "htpasswd" },
          routes: [{ host: "locked.test", path: "/", service: "tls-app", ports: [tlsPort] }],
        },
      ],
      [tlsSecret("web", proxyPair), { metadata: { name: "htpasswd", namespace: "default" }, type: "Opaque", data: { auth: Buffer.from("admin:{PLAIN}pw\n").toString("base64") } }],
    );
    assert.equal(table.passthrough.size, 7);
    plane.setTable(table);
  });
  after(async () => {
    await plane.shutdown(1_000);
    await app.close();
    await new Promise<void>((resolve) => {
      tlsApp.close(() => resolve());
      tlsApp.closeAllConnections();
    });
  });

  test("a passthrough host: the client meets the backend's certificate and gets its answer", async () => {
    const port = plane.httpsPort as number;
    const r = await get(port, "pass.test", "/any/path");
    assert.equal(r.status, 200);
    assert.equal(r.certificate, fingerprint(backendPair.cert));
    assert.deepEqual(JSON.parse(r.body), { backend: "tls-app", servername: "pass.test", url: "/any/path" });
    // a wildcard host, one label deep
    const w = await get(port, "A.Wild.Test", "/w");
    assert.equal(w.certificate, fingerprint(backendPair.cert));
    assert.equal(JSON.parse(w.body).url, "/w");
  });

  test("other hosts on the same listener: the proxy's certificate and routing", async () => {
    const port = plane.httpsPort as number;
    const web = await get(port, "web.test", "/x");
    assert.equal(web.status, 200);
    assert.equal(web.certificate, fingerprint(proxyPair.cert));
    assert.equal(json<Echo>({ body: Buffer.from(web.body) } as never).url, "/x");
    // two labels under the wildcard is not a passthrough host; nor is a client without SNI
    assert.deepEqual(await handshake(port, "a.b.wild.test"), { certificate: fingerprint(defaultCertificate.cert) });
    assert.deepEqual(await handshake(port, ""), { certificate: fingerprint(defaultCertificate.cert) });
  });

  test("never relayed unprotected: source ranges are checked on the peer address, auth closes the connection", async () => {
    const port = plane.httpsPort as number;
    const backendCert = { certificate: fingerprint(backendPair.cert) };
    assert.deepEqual(await handshake(port, "allowed.test"), backendCert, "127.0.0.1 is in 127.0.0.0/8");
    const fenced = await handshake(port, "fenced.test");
    assert.ok("closed" in fenced, `outside the source range: ${JSON.stringify(fenced)}`);
    const locked = await handshake(port, "locked.test");
    assert.ok("closed" in locked, `basic auth cannot be checked on an unread stream: ${JSON.stringify(locked)}`);
    assert.deepEqual(
      table.diagnostics.filter((d) => d.reason === "PassthroughUnprotected").map((d) => [d.ingress.name, d.field.replace(/^.*\//, "")]),
      [
        ["allowed", "allowlist-source-range']"],
        ["fenced", "allowlist-source-range']"],
        ["locked", "auth-secret']"],
        ["locked", "auth-type']"],
      ],
    );
    // plain HTTP to the locked host still asks for the password
    assert.equal((await send(plane.httpPort, { host: "locked.test", path: "/" })).status, 401);
  });

  test("plain HTTP to a passthrough host is served by the Ingress's rules", async () => {
    const r = await send(plane.httpPort, { host: "pass.test", path: "/plain/p" });
    assert.equal(r.status, 200);
    assert.equal(json<Echo>(r).backend, "app");
    assert.equal(json<Echo>(r).url, "/plain/p");
  });

  test("a ClientHello trickling in over many reads is still read whole", async () => {
    // a relay between client and proxy that forwards the client's bytes in writes of 16 bytes
    const relay = createNetServer((client) => {
      const upstream = netConnect(plane.httpsPort as number, "127.0.0.1");
      upstream.setNoDelay(true);
      let queue = Promise.resolve();
      client.on("data", (chunk: Buffer) => {
        client.pause();
        queue = queue.then(async () => {
          for (let i = 0; i < chunk.length; i += 16) {
            upstream.write(chunk.subarray(i, i + 16));
            await new Promise((r) => setTimeout(r, 1));
          }
          client.resume();
        });
      });
      upstream.pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    try {
      const r = await get((relay.address() as AddressInfo).port, "pass.test", "/slow");
      assert.equal(r.certificate, fingerprint(backendPair.cert));
      assert.equal(JSON.parse(r.body).url, "/slow");
    } finally {
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });

  test("an endpoint that refuses: the next is tried; none answering closes the connection", async () => {
    const port = plane.httpsPort as number;
    const retries = plane.retries();
    for (let i = 0; i < 3; i++) assert.equal((await get(port, "retry.test", "/r")).certificate, fingerprint(backendPair.cert));
    assert.ok(plane.retries() > retries, "a refused endpoint was skipped");
    const r = await handshake(port, "dead.test");
    assert.ok("closed" in r, JSON.stringify(r));
  });

  test("garbage and plain HTTP on the HTTPS port fare as without passthrough hosts", async () => {
    const port = plane.httpsPort as number;
    const inputs = ["GET / HTTP/1.1\r\nhost: pass.test\r\n\r\n", Buffer.from([22, 3, 1, 0, 0]), Buffer.from([22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0])];
    const withPassthrough = [];
    for (const input of inputs) withPassthrough.push(await rawExchange(port, input, 3_000));
    plane.setTable(tableOf([{ name: "web", tls: [{ hosts: ["web.test"], secretName: "web" }], routes: [{ host: "web.test", path: "/", service: "app", ports: [app.port] }] }], [tlsSecret("web", proxyPair)]));
    try {
      const without = [];
      for (const input of inputs) without.push(await rawExchange(port, input, 3_000));
      assert.deepEqual(withPassthrough, without);
      // (each answered by rustls with an alert, not by silence)
      for (const r of withPassthrough) assert.equal(r.charCodeAt(0), 21, JSON.stringify(r));
      // and pass.test is then terminated by the proxy like any host
      assert.deepEqual(await handshake(port, "pass.test"), { certificate: fingerprint(defaultCertificate.cert) });
    } finally {
      plane.setTable(table);
    }
    assert.deepEqual(await handshake(port, "pass.test"), { certificate: fingerprint(backendPair.cert) });
  });
});
