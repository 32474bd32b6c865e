// How the upstream is reached, through the real proxy with real backends: HTTPS endpoints (verification off and
// on, the name checked, SNI), gRPC over HTTP/2 with its trailers, per-route timeouts, proxy-next-upstream (and its
// timeout), body size limits, request buffering, HTTP/1.0, and the response buffering knobs accepted without effect.
import assert from "node:assert/strict";
import { type IncomingMessage, request, type ServerResponse } from "node:http";
import { type ClientHttp2Session, connect as connectH2, createSecureServer, createServer as createH2Server, type Http2Server, type Http2SecureServer, type ServerHttp2Stream } from "node:http2";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { after, before, test } from "node:test";
import { generateSelfSignedCertificate } from "@bollard/ingress";
import type { Secret } from "../../../ingress/src/model/objects.ts";
import { type Backend, deadPort, heldAnswer, type IngressSpec, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";
const backendPair = generateSelfSignedCertificate("backend.test", ["backend.test"]);
const otherPair = generateSelfSignedCertificate("other.test", ["other.test"]);
const caSecret = (name: string, ca: string): Secret => ({ metadata: { name, namespace: "default" }, stringData: { "ca.crt": ca } });
const secrets = [caSecret("right-ca", backendPair.cert), caSecret("wrong-ca", otherPair.cert)];

const listen = async <S extends { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }>(server: S) => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
};
const closeServer = (server: { close(cb: () => void): unknown }) => new Promise<void>((resolve) => server.close(() => resolve()));

/** One Ingress per case, each on its own host, all pointing at `ports`. */
const route = (name: string, annotations: Record<string, string>, ports: number[]): IngressSpec => ({
  name,
  annotations: Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v])),
  routes: [{ host: `${name}.test`, service: `svc-${name}`, ports }],
});

eachPlane("policy: upstream over HTTPS", (kind) => {
  let plane: RunningPlane;
  let server: HttpsServer;
  /** what the backend saw of each request: whether it came over TLS, and the SNI sent */
  const seen: { encrypted: boolean; servername: string | false }[] = [];
  let handshakes = 0;
  before(async () => {
    server = createHttpsServer({ cert: backendPair.cert, key: backendPair.key }, (req, res) => {
      const socket = req.socket as TLSSocket;
      seen.push({ encrypted: socket.encrypted === true, servername: socket.servername ?? false });
      res.end("over tls");
    });
    server.on("secureConnection", () => handshakes++);
    const port = await listen(server);
    plane = await kind.start();
    plane.setTable(
      tableOf(
        [
          route("plain", {}, [port]),
          route("off", { "backend-protocol": "HTTPS" }, [port]),
          route("wrong", { "backend-protocol": "HTTPS", "proxy-ssl-secret": "wrong-ca", "proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test" }, [port]),
          route("right", { "backend-protocol": "HTTPS", "proxy-ssl-secret": "default/right-ca", "proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test" }, [port]),
          route("badname", { "backend-protocol": "HTTPS", "proxy-ssl-secret": "right-ca", "proxy-ssl-verify": "on" }, [port]),
          route("noca", { "backend-protocol": "HTTPS", "proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test" }, [port]),
          // accepted with a difference: the chain is checked up to ca.crt whatever its length; TLS 1.2 and 1.3 are offered
          route("ssl-knobs", { "backend-protocol": "HTTPS", "proxy-ssl-secret": "right-ca", "proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test", "proxy-ssl-verify-depth": "1", "proxy-ssl-protocols": "TLSv1.2 TLSv1.3" }, [port]),
          route("sni", { "backend-protocol": "HTTPS", "proxy-ssl-name": "backend.test", "proxy-ssl-server-name": "on" }, [port]),
        ],
        secrets,
      ),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    server.closeAllConnections();
    await closeServer(server);
  });

  test("plain HTTP to a TLS endpoint fails (the route needs backend-protocol: HTTPS)", async () => {
    assert.equal((await send(plane.httpPort, { host: "plain.test" })).status, 502);
  });

  test("HTTPS with verification off: TLS to a self-signed endpoint, connections reused", async () => {
    seen.length = 0;
    const before = handshakes;
    for (let i = 0; i < 6; i++) {
      const r = await send(plane.httpPort, { host: "off.test" });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), "over tls");
    }
    assert.deepEqual(
      seen.map((s) => s.encrypted),
      [true, true, true, true, true, true],
    );
    // (a pool per runtime thread: the plane runs two)
    assert.ok(handshakes - before <= 2, `${handshakes - before} TLS connections for 6 requests: kept alive and reused`);
  });

  test("verification on: a wrong CA → 502, the right CA and name → 200", async () => {
    assert.equal((await send(plane.httpPort, { host: "wrong.test" })).status, 502);
    assert.equal((await send(plane.httpPort, { host: "right.test" })).status, 200);
  });

  test("proxy-ssl-verify-depth and proxy-ssl-protocols are accepted: the verified route still serves", async () => {
    const r = await send(plane.httpPort, { host: "ssl-knobs.test" });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "over tls");
  });

  test("verification on checks the name: the default ($service_name.$namespace.svc) is not on the certificate → 502", async () => {
    assert.equal((await send(plane.httpPort, { host: "badname.test" })).status, 502);
  });

  test("verification on without ca.crt trusts nothing → 502", async () => {
    assert.equal((await send(plane.httpPort, { host: "noca.test" })).status, 502);
  });

  test("SNI is sent only with proxy-ssl-server-name", async () => {
    seen.length = 0;
    assert.equal((await send(plane.httpPort, { host: "sni.test" })).status, 200);
    assert.equal((await send(plane.httpPort, { host: "right.test" })).status, 200);
    assert.deepEqual(
      seen.map((s) => s.servername),
      ["backend.test", false],
    );
  });
});

/** A gRPC-style unary answer: the request's message echoed back, then `grpc-status` in trailers. */
function answerGrpc(stream: ServerHttp2Stream, headers: Record<string, string | string[] | undefined>) {
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc", "x-saw-te": String(headers.te ?? "") }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "fine" }));
    stream.end(Buffer.concat(chunks));
  });
}

function h2Session(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connectH2(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.once("remoteSettings", () => resolve(session));
    session.once("error", reject);
  });
}

/** One gRPC call through the plane's HTTPS port (HTTP/2 by ALPN): status, headers, body, trailers. */
function grpcCall(session: ClientHttp2Session, host: string, message: Buffer) {
  return new Promise<{ status: number; contentType: string; sawTe: string; body: Buffer; trailers: Record<string, unknown> }>((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": "/echo.Echo/Say", ":authority": host, "content-type": "application/grpc", te: "trailers" });
    let status = 0;
    let contentType = "";
    let sawTe = "";
    let trailers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      status = Number(h[":status"]);
      contentType = String(h["content-type"]);
      sawTe = String(h["x-saw-te"]);
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve({ status, contentType, sawTe, body: Buffer.concat(chunks), trailers }));
    req.on("error", reject);
    req.end(message);
  });
}

eachPlane("policy: upstream gRPC (HTTP/2 to the endpoint)", (kind) => {
  let plane: RunningPlane;
  let h2c: Http2Server;
  let h2s: Http2SecureServer;
  let session: ClientHttp2Session;
  before(async () => {
    h2c = createH2Server();
    h2c.on("stream", answerGrpc);
    h2s = createSecureServer({ cert: backendPair.cert, key: backendPair.key });
    h2s.on("stream", answerGrpc);
    const [c, s] = [await listen(h2c), await listen(h2s)];
    plane = await kind.start({}, { https: true });
    plane.setTable(
      tableOf(
        [
          route("grpc", { "backend-protocol": "GRPC" }, [c]),
          route("grpcs", { "backend-protocol": "GRPCS", "proxy-ssl-secret": "right-ca", "proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test" }, [s]),
          route("grpcs-wrong", { "backend-protocol": "GRPCS", "proxy-ssl-secret": "wrong-ca", "proxy-ssl-verify": "on", "proxy-ssl-name": "backend.test" }, [s]),
        ],
        secrets,
      ),
    );
    session = await h2Session(plane.httpsPort as number);
  });
  after(async () => {
    session.close();
    await plane.shutdown(1000);
    await closeServer(h2c);
    await closeServer(h2s);
  });

  // a gRPC message: not compressed, 4-byte length, payload
  const message = Buffer.concat([Buffer.from([0, 0, 0, 0, 5]), Buffer.from("hello")]);

  for (const host of ["grpc.test", "grpcs.test"]) {
    test(`${host}: the answer and its trailers (grpc-status) reach the client`, async () => {
      const r = await grpcCall(session, host, message);
      assert.equal(r.status, 200);
      assert.equal(r.contentType, "application/grpc");
      assert.equal(r.sawTe, "trailers", "te: trailers forwarded");
      assert.deepEqual(r.body, message);
      assert.equal(r.trailers["grpc-status"], "0");
      assert.equal(r.trailers["grpc-message"], "fine");
    });
  }

  test("GRPCS with a wrong CA → 502", async () => {
    assert.equal((await grpcCall(session, "grpcs-wrong.test", message)).status, 502);
  });
});

eachPlane("policy: upstream timeouts, retries, limits", (kind) => {
  let plane: RunningPlane;
  let live: Backend;
  let silent: Backend;
  let slow: Backend;
  let unavailable: Backend;
  let versioned: Backend;
  let lagging: Backend;
  let knobs: Backend;
  const held = heldAnswer();
  let dead: number;
  before(async () => {
    live = await startBackend("live");
    silent = await startBackend("silent", () => true); // takes the request, never answers
    slow = await startBackend("slow", async (_req: IncomingMessage, res: ServerResponse) => {
      await new Promise((resolve) => setTimeout(resolve, 600));
      res.end("late");
      return true;
    });
    unavailable = await startBackend("unavailable", (_req, res) => {
      res.writeHead(503).end("busy");
      return true;
    });
    versioned = await startBackend("versioned", async (req, res) => {
      let bytes = 0;
      for await (const c of req) bytes += (c as Buffer).length;
      res.end(JSON.stringify({ version: req.httpVersion, bytes, length: req.headers["content-length"] ?? null, te: req.headers["transfer-encoding"] ?? null }));
      return true;
    });
    // answers after 1.1 s: 503 for /fail, else 200
    lagging = await startBackend("lagging", async (req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      if (req.url?.startsWith("/fail")) res.writeHead(503).end("busy");
      else res.end("late");
      return true;
    });
    knobs = await startBackend("knobs", (req, res) => (req.url === "/held" ? held.answer(res) : false));
    dead = await deadPort();
    // the flag's read timeout is short: only a route that asks for longer waits for the slow backend
    plane = await kind.start({ readTimeout: 200 });
    plane.setTable(
      tableOf([
        route("silent", { "proxy-read-timeout": "1" }, [silent.port]),
        route("slow-default", {}, [slow.port]),
        route("slow-patient", { "proxy-read-timeout": "5" }, [slow.port]),
        route("error", { "proxy-next-upstream": "error" }, [dead, live.port]),
        route("off", { "proxy-next-upstream": "off" }, [dead, live.port]),
        route("on503", { "proxy-next-upstream": "error http_503" }, [unavailable.port, live.port]),
        route("no503", {}, [unavailable.port, live.port]),
        route("tries1", { "proxy-next-upstream-tries": "1" }, [dead, live.port]),
        route("nut-dead", { "proxy-next-upstream-timeout": "5" }, [dead, live.port]),
        // the lagging endpoint's 503 comes after 1.1 s: past a 1 s proxy-next-upstream-timeout no other attempt starts
        route("nut-late", { "proxy-next-upstream": "error http_503", "proxy-next-upstream-timeout": "1", "proxy-read-timeout": "5" }, [lagging.port, live.port]),
        route("nut-none", { "proxy-next-upstream": "error http_503", "proxy-read-timeout": "5" }, [lagging.port, live.port]),
        route("small", { "proxy-body-size": "1k" }, [live.port]),
        route("unlimited", { "proxy-body-size": "0" }, [live.port]),
        route("v10", { "proxy-http-version": "1.0" }, [versioned.port]),
        route("v11", {}, [versioned.port]),
        route("unbuffered", { "proxy-request-buffering": "off" }, [versioned.port]),
        route("small-buffer", { "client-body-buffer-size": "100" }, [versioned.port]),
        // accepted with a difference: not timed on its own, so the answer is waited for up to proxy-read-timeout
        route("send-timeout", { "proxy-send-timeout": "1", "proxy-read-timeout": "5" }, [lagging.port]),
        // accepted without effect: answers are streamed whatever these say
        route("buffering", { "proxy-buffering": "on", "proxy-buffer-size": "64k", "proxy-buffers-number": "8", "proxy-max-temp-file-size": "1m" }, [knobs.port]),
      ]),
    );
  });
  after(async () => {
    held.release();
    await plane.shutdown(1000);
    for (const b of [live, silent, slow, unavailable, versioned, lagging, knobs]) await b.close();
  });

  const statuses = async (host: string, n: number, options: { method?: string; body?: string; path?: string } = {}) => {
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) seen.add((await send(plane.httpPort, { host, ...options })).status);
    return [...seen].sort();
  };

  test("a backend that never answers → 504 within the route's read timeout", async () => {
    assert.equal((await send(plane.httpPort, { host: "silent.test" })).status, 504);
  });

  test("proxy-read-timeout overrides the flag: the slow backend is waited for only on the route that asks", async () => {
    assert.equal((await send(plane.httpPort, { host: "slow-default.test" })).status, 504);
    const r = await send(plane.httpPort, { host: "slow-patient.test" });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "late");
  });

  test("next-upstream error: a dead endpoint beside a live one never shows", async () => {
    assert.deepEqual(await statuses("error.test", 4), [200]);
    assert.deepEqual(await statuses("error.test", 4, { method: "POST", body: "x" }), [200]);
  });

  test("next-upstream off (or 1 try): the dead endpoint's requests fail 502", async () => {
    assert.deepEqual(await statuses("off.test", 4), [200, 502]);
    assert.deepEqual(await statuses("tries1.test", 4), [200, 502]);
  });

  test("next-upstream http_503: a 503 answer is replaced by another endpoint's; not listed, it is passed on", async () => {
    assert.deepEqual(await statuses("on503.test", 4), [200]);
    assert.deepEqual(await statuses("on503.test", 4, { method: "PUT", body: "x" }), [200]);
    assert.deepEqual(await statuses("no503.test", 4), [200, 503]);
  });

  test("next-upstream http_503 never sends a POST twice (non_idempotent not listed)", async () => {
    assert.deepEqual(await statuses("on503.test", 4, { method: "POST", body: "x" }), [200, 503]);
  });

  test("proxy-next-upstream-timeout: a retry within it still happens; none starts after it", async () => {
    assert.deepEqual(await statuses("nut-dead.test", 4), [200]);
    // (the same endpoints and conditions: only the timeout tells these two routes apart)
    assert.deepEqual(await statuses("nut-none.test", 4, { path: "/fail" }), [200]);
    assert.deepEqual(await statuses("nut-late.test", 4, { path: "/fail" }), [200, 503]);
  });

  test("proxy-body-size: over → 413 (with a length, or chunked), under → forwarded; 0 lifts the flag's limit", async () => {
    const big = "x".repeat(2048);
    assert.equal((await send(plane.httpPort, { host: "small.test", method: "POST", body: big })).status, 413);
    const chunked = (async function* () {
      yield Buffer.from(big);
    })();
    assert.equal((await send(plane.httpPort, { host: "small.test", method: "POST", body: chunked })).status, 413);
    assert.equal((await send(plane.httpPort, { host: "small.test", method: "POST", body: "x".repeat(512) })).status, 200);
    // (the plane's own limit is 1 MiB)
    const r = await send(plane.httpPort, { host: "unlimited.test", method: "POST", body: "x".repeat(2 * 1024 * 1024) });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body.toString()).bodyBytes, 2 * 1024 * 1024);
  });

  test("proxy-http-version 1.0: the request line says HTTP/1.0, and a chunked body goes with its length", async () => {
    const chunked = () =>
      (async function* () {
        yield Buffer.from("abc");
        yield Buffer.from("def");
      })();
    const v10 = await send(plane.httpPort, { host: "v10.test", method: "POST", body: chunked() });
    assert.equal(v10.status, 200);
    assert.deepEqual(JSON.parse(v10.body.toString()), { version: "1.0", bytes: 6, length: "6", te: null });
    const v11 = await send(plane.httpPort, { host: "v11.test", method: "POST", body: chunked() });
    assert.equal(JSON.parse(v11.body.toString()).version, "1.1");
  });

  const chunked = (...parts: number[]) =>
    (async function* () {
      for (const n of parts) yield Buffer.from("x".repeat(n));
    })();
  const upstreamSaw = async (host: string, ...parts: number[]) => {
    const r = await send(plane.httpPort, { host, method: "POST", body: chunked(...parts) });
    assert.equal(r.status, 200, host);
    const { bytes, length, te } = JSON.parse(r.body.toString());
    return { bytes, length, te };
  };

  test("a small chunked body is read whole and sent with its length; proxy-request-buffering off streams it chunked", async () => {
    assert.deepEqual(await upstreamSaw("v11.test", 100, 100), { bytes: 200, length: "200", te: null });
    assert.deepEqual(await upstreamSaw("unbuffered.test", 100, 100), { bytes: 200, length: null, te: "chunked" });
  });

  test("client-body-buffer-size: a body up to it is read whole, a longer one streams chunked", async () => {
    assert.deepEqual(await upstreamSaw("small-buffer.test", 50, 50), { bytes: 100, length: "100", te: null });
    assert.deepEqual(await upstreamSaw("small-buffer.test", 100, 100), { bytes: 200, length: null, te: "chunked" });
  });

  test("proxy-send-timeout does not cut the wait for the answer short: proxy-read-timeout bounds it", async () => {
    const r = await send(plane.httpPort, { host: "send-timeout.test" });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "late");
  });

  test("proxy-buffering on, proxy-buffer-size, -buffers-number, -max-temp-file-size: the route serves, and an answer is still streamed", { timeout: 20_000 }, async () => {
    assert.equal((await send(plane.httpPort, { host: "buffering.test", path: "/x" })).status, 200);
    const text = await new Promise<string>((resolve, reject) => {
      request({ port: plane.httpPort, host: "127.0.0.1", path: "/held", headers: { host: "buffering.test" }, agent: false }, (res) => {
        let seen = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          seen += c;
          // the backend finishes only once the first part reached us: a buffered answer never would
          if (seen === "first\n") held.release();
        });
        res.on("end", () => resolve(seen));
      })
        .on("error", reject)
        .end();
    });
    assert.equal(text, "first\nsecond\n");
  });
});
