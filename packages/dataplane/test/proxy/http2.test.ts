// HTTP/2 on the data plane's HTTPS listener (ALPN h2, HTTP/1.1 for clients that do not offer it), with
// node:http2 as the client: h2 requests reach the same upstreams as HTTP/1.1 ones, bodies stream both ways, the
// proxy's own answers work without HTTP/1.1 connection headers, WebSocket stays on HTTP/1.1, a rapid-reset burst
// leaves other clients served, and shutdown sends GOAWAY while open streams finish.
import assert from "node:assert/strict";
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { type ClientHttp2Session, connect as connectH2, constants } from "node:http2";
import type { Duplex } from "node:stream";
import { connect as connectTls } from "node:tls";
import { after, before, test } from "node:test";
import { generateSelfSignedCertificate } from "@bollard/ingress";
import { type Backend, type Echo, heldAnswer, startBackend, tableOf, tlsSecret } from "../../../ingress/test/helpers/backends.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const fooCert = generateSelfSignedCertificate("foo.test", ["foo.test"]);

interface H2Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on an HTTP/2 session; `body` is sent as DATA frames (no content-length unless given). */
function h2Request(session: ClientHttp2Session, headers: Record<string, string | string[]>, body?: Buffer | AsyncIterable<Buffer>): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let responseHeaders: H2Response["headers"] = {};
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = h as H2Response["headers"];
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
    if (Buffer.isBuffer(body)) stream.end(body);
    else if (body !== undefined)
      (async () => {
        for await (const chunk of body) if (!stream.write(chunk)) await new Promise((r) => stream.once("drain", r));
        stream.end();
      })().catch(reject);
  });
}

function openSession(port: number, servername = "foo.test"): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connectH2(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
    session.once("remoteSettings", () => resolve(session));
    session.once("error", reject);
  });
}

eachPlane("HTTP/2", (kind) => {
  let a: Backend;
  let b: Backend;
  let slow: Backend;
  let sink: Backend;
  const held = heldAnswer();
  let plane: RunningPlane;
  let port: number;
  let session: ClientHttp2Session;
  const upgradeSockets = new Set<Duplex>();

  before(async () => {
    a = await startBackend("a");
    b = await startBackend("b");
    slow = await startBackend("slow", (_req, res) => held.answer(res));
    // Reads bodies to the end and answers; a body the proxy cuts off (413) is just dropped.
    sink = await startBackend("sink", (req, res) => {
      req.on("error", () => {});
      req.on("end", () => res.end("ok"));
      req.resume();
      return true;
    });
    // A WebSocket-ish backend: completes the switch, then echoes.
    a.server.on("upgrade", (_req: IncomingMessage, socket: Duplex) => {
      upgradeSockets.add(socket);
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
      socket.on("data", (c: Buffer) => socket.write(Buffer.concat([Buffer.from("echo:"), c])));
      socket.on("error", () => socket.destroy());
    });
    plane = await kind.start({ maxBodySize: 1024 * 1024 }, { https: true });
    port = plane.httpsPort ?? 0;
    plane.setTable(
      tableOf(
        [
          {
            name: "h2",
            tls: [{ hosts: ["foo.test"], secretName: "foo-tls" }],
            routes: [
              { host: "foo.test", path: "/", service: "a", ports: [a.port] },
              { host: "foo.test", path: "/b", service: "b", ports: [b.port] },
              { host: "foo.test", path: "/slow", service: "slow", ports: [slow.port] },
              { host: "foo.test", path: "/empty", service: "empty", ports: [] },
              { host: "foo.test", path: "/sink", service: "sink", ports: [sink.port] },
            ],
          },
        ],
        [tlsSecret("foo-tls", fooCert)],
      ),
    );
    session = await openSession(port);
  });

  after(async () => {
    session?.destroy();
    for (const s of upgradeSockets) s.destroy();
    await plane.shutdown(1000);
    await Promise.all([a.close(), b.close(), slow.close(), sink.close()]);
  });

  test("ALPN picks h2 with at most 128 concurrent streams; SNI picks the certificate; :authority routes and becomes Host upstream; the target goes as sent", async () => {
    assert.equal(session.alpnProtocol, "h2");
    assert.equal(session.remoteSettings.maxConcurrentStreams, 128);
    const socket = session.socket as unknown as { getPeerCertificate(): { fingerprint256: string } };
    assert.equal(socket.getPeerCertificate().fingerprint256, new X509Certificate(fooCert.cert).fingerprint256);
    const r = await h2Request(session, { ":method": "GET", ":path": "/b/x?q=%20", ":authority": "foo.test", "x-end": "kept" });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body.toString()) as Echo;
    assert.equal(echo.backend, "b");
    assert.equal(echo.url, "/b/x?q=%20");
    assert.equal(echo.headers.host, "foo.test");
    assert.equal(echo.headers["x-forwarded-proto"], "https");
    assert.equal(echo.headers["x-forwarded-host"], "foo.test");
    assert.equal(echo.headers["x-end"], "kept");
    assert.ok(!echo.rawHeaders.some((h) => h.startsWith(":")), `pseudo-headers forwarded: ${echo.rawHeaders}`);
  });

  test("concurrent streams on one connection reach their own backends", async () => {
    const paths = ["/", "/b", "/b/1", "/x", "/b/2", "/"];
    const answers = await Promise.all(paths.map((p) => h2Request(session, { ":path": p, ":authority": "foo.test" })));
    assert.deepEqual(
      answers.map((r) => (JSON.parse(r.body.toString()) as Echo).backend),
      paths.map((p) => (p.startsWith("/b") ? "b" : "a")),
    );
  });

  test("a request body in DATA frames (no content-length) arrives intact; split cookies arrive as one", async () => {
    const body = randomBytes(512 * 1024);
    async function* chunks() {
      for (let i = 0; i < body.length; i += 16384) yield body.subarray(i, i + 16384);
    }
    const r = await h2Request(session, { ":method": "POST", ":path": "/b/upload", ":authority": "foo.test", cookie: ["a=1", "b=2"] }, chunks());
    const echo = JSON.parse(r.body.toString()) as Echo;
    assert.equal(echo.bodyBytes, body.length);
    assert.equal(echo.bodySha256, createHash("sha256").update(body).digest("hex"));
    assert.equal(echo.headers.cookie, "a=1; b=2");
  });

  test("the proxy's own answers: 404, 503, 400, and 413 with or without content-length", async () => {
    assert.equal((await h2Request(session, { ":path": "/", ":authority": "nope.test" })).status, 404);
    assert.equal((await h2Request(session, { ":path": "/empty", ":authority": "foo.test" })).status, 503);
    assert.equal((await h2Request(session, { ":path": "/a%zz", ":authority": "foo.test" })).status, 400);
    const before413 = plane.responses(4);
    const big = Buffer.alloc(1024 * 1024 + 1);
    assert.equal((await h2Request(session, { ":method": "POST", ":path": "/sink", ":authority": "foo.test", "content-length": String(big.length) }, big)).status, 413);
    async function* chunks() {
      for (let i = 0; i < 3; i++) yield Buffer.alloc(512 * 1024);
    }
    assert.equal((await h2Request(session, { ":method": "POST", ":path": "/sink", ":authority": "foo.test" }, chunks())).status, 413);
    // Their streams are over (reset with NO_ERROR), not left waiting for a body nobody reads.
    await until(() => plane.responses(4) - before413 === 2);
    // The connection survives all of that.
    assert.equal((await h2Request(session, { ":path": "/", ":authority": "foo.test" })).status, 200);
  });

  test("a client that offers only http/1.1 gets HTTP/1.1, and WebSocket works over it", async () => {
    const socket = connectTls({ host: "127.0.0.1", port, servername: "foo.test", ALPNProtocols: ["http/1.1"], rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
      assert.equal(socket.alpnProtocol, "http/1.1");
      let received = "";
      socket.setEncoding("latin1");
      socket.on("data", (c: string) => {
        received += c;
      });
      socket.write("GET /chat HTTP/1.1\r\nHost: foo.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
      await until(() => received.includes("\r\n\r\n"));
      assert.match(received, /^HTTP\/1\.1 101 /);
      socket.write("hello");
      await until(() => received.endsWith("echo:hello"));
    } finally {
      socket.destroy();
    }
  });

  test("rapid reset: a client opening and cancelling streams in a burst does not stop other clients", async () => {
    const attacker = await openSession(port);
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
    const victim = await openSession(port);
    try {
      assert.equal((await h2Request(victim, { ":path": "/", ":authority": "foo.test" })).status, 200);
    } finally {
      victim.close();
      attacker.destroy();
    }
  });

  test("shutdown: GOAWAY; an open stream still finishes", async () => {
    const s = await openSession(port);
    const stream = s.request({ ":path": "/slow", ":authority": "foo.test" });
    let text = "";
    stream.setEncoding("utf8");
    const ended = new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    const goaway = new Promise<void>((resolve) => s.once("goaway", () => resolve()));
    stream.on("data", (c: string) => {
      text += c;
    });
    await until(() => text === "first\n");
    const stopped = plane.shutdown(10_000);
    await goaway;
    held.release();
    await ended;
    assert.equal(text, "first\nsecond\n");
    await stopped;
    s.destroy();
  });
});

async function until(check: () => boolean, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met before the deadline");
    await new Promise((r) => setTimeout(r, 5));
  }
}
