// Hostile HTTP/1 input, judged on the wire: the exact bytes go in on a raw socket, and both the client's answer
// and every byte that reached the upstream are checked. The data plane runs in a process of its own (see
// data-plane.ts), so these tests hold for any implementation of the listener.
import assert from "node:assert/strict";
import { connect as connectTls } from "node:tls";
import { after, before, describe, test } from "node:test";
import { rawExchange, send, statusOf } from "../helpers/client.ts";
import { eventually } from "../helpers/wait.ts";
import { type DataPlane, planeKinds, startDataPlane } from "./data-plane.ts";
import { type LoggingUpstream, startLoggingUpstream } from "./logging-upstream.ts";

const HOST = "foo.test";
const routes = (port: number) => [{ name: "hostile", routes: [{ host: HOST, service: "up", ports: [port] }] }];

/** Sends `text` over TLS (ALPN http/1.1 only) and collects the answer until the server closes. */
function rawTlsExchange(port: number, text: string, waitMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ port, host: "127.0.0.1", servername: HOST, ALPNProtocols: ["http/1.1"], rejectUnauthorized: false });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.once("secureConnect", () => socket.write(text));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "ECONNRESET") reject(err);
    });
  });
}

/** The header lines the upstream parsed for the request to `target`, as a name → values map (names lower-cased). */
function upstreamHeadersOf(upstream: LoggingUpstream, target: string): Map<string, string[]> {
  const head = upstream.heads.find((h) => h.target === target);
  assert.ok(head, `the upstream never saw ${target}; it saw ${JSON.stringify(upstream.targets)}`);
  const out = new Map<string, string[]>();
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    const name = (head.rawHeaders[i] as string).toLowerCase();
    out.set(name, [...(out.get(name) ?? []), head.rawHeaders[i + 1] as string]);
  }
  return out;
}

for (const kind of planeKinds()) {
  describe(`[${kind}] hostile HTTP/1 input`, () => {
    let upstream: LoggingUpstream;
    let plane: DataPlane;
    before(async () => {
      upstream = await startLoggingUpstream();
      plane = await startDataPlane(kind, { clientBodyTimeout: 1_000, requestBufferSize: 64 * 1024 });
      await plane.setRoutes(routes(upstream.port));
    });
    after(async () => {
      await plane.stop();
      await upstream.close();
    });

    const stillServes = async () => {
      assert.ok(plane.alive(), `the data plane died:\n${plane.stderr()}`);
      const r = await send(plane.httpPort, { host: HOST, path: "/still-serving" });
      assert.equal(r.status, 200);
    };

    test("`GET / HTTP/2.0` (18 bytes) → 505 on both listeners, the process lives, nothing reaches the upstream", async () => {
      const before = upstream.connections.length;
      assert.equal(statusOf(await rawExchange(plane.httpPort, "GET / HTTP/2.0\r\n\r\n")), 505);
      assert.equal(statusOf(await rawExchange(plane.httpPort, `GET / HTTP/2.0\r\nHost: ${HOST}\r\n\r\n`)), 505);
      for (const version of ["HTTP/3.0", "HTTP/1.2", "HTTP/9.9"]) {
        assert.equal(statusOf(await rawExchange(plane.httpPort, `GET / ${version}\r\nHost: ${HOST}\r\n\r\n`)), 505, version);
      }
      assert.equal(statusOf(await rawTlsExchange(plane.httpsPort, `GET / HTTP/2.0\r\nHost: ${HOST}\r\n\r\n`)), 505);
      const upgrade = `GET /ws HTTP/2.0\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
      assert.equal(statusOf(await rawExchange(plane.httpPort, upgrade)), 505);
      assert.equal(upstream.connections.length, before);
      await stillServes();
    });

    test("Upgrade with a body cannot smuggle a request onto the upstream connection: 400, and the hidden request is never parsed", async () => {
      const smuggle = (framing: string) =>
        `GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${framing}\r\n` +
        `GET /next HTTP/1.1\r\nHost: ${HOST}\r\nX-Pad: GET /SMUGGLED-ADMIN HTTP/1.1\r\n\r\n`;
      assert.equal(statusOf(await rawExchange(plane.httpPort, smuggle("Content-Length: 40\r\n"))), 400);
      assert.equal(statusOf(await rawExchange(plane.httpPort, smuggle("Transfer-Encoding: chunked\r\n"))), 400);
      // A real upgrade afterwards still switches, on a connection of its own, and what follows stays its own.
      const before = upstream.connections.length;
      const answer = await rawExchange(plane.httpPort, `GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello`, 1_000);
      assert.equal(statusOf(answer), 101);
      assert.match(answer, /hello$/);
      for (let i = 0; i < 3; i++) assert.equal((await send(plane.httpPort, { host: HOST, path: `/after-${i}` })).status, 200);
      assert.ok(upstream.connections.length > before);
      assert.doesNotMatch(upstream.text(), /SMUGGLED/);
      assert.ok(!upstream.targets.some((t) => t.includes("SMUGGLED")), JSON.stringify(upstream.targets));
    });

    test("`Connection: close, Host` cannot strip Host: the upstream sees the Host the route was chosen on", async () => {
      const r = await rawExchange(plane.httpPort, `GET /conn-host HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close, Host\r\n\r\n`);
      assert.equal(statusOf(r), 200);
      assert.deepEqual(upstreamHeadersOf(upstream, "/conn-host").get("host"), [HOST]);
      const u = await rawExchange(plane.httpPort, `GET /conn-host-ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade, Host\r\nUpgrade: websocket\r\n\r\n`, 1_000);
      assert.equal(statusOf(u), 101);
      assert.deepEqual(upstreamHeadersOf(upstream, "/conn-host-ws").get("host"), [HOST]);
    });

    test("header names with underscores are dropped (X_Forwarded_For would read as X-Forwarded-For to CGI back ends)", async () => {
      const r = await rawExchange(plane.httpPort, `GET /underscores HTTP/1.1\r\nHost: ${HOST}\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nX-Kept: yes\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(r), 200);
      const seen = upstreamHeadersOf(upstream, "/underscores");
      assert.ok(![...seen.keys()].some((n) => n.includes("_")), JSON.stringify([...seen.keys()]));
      assert.deepEqual(seen.get("x-kept"), ["yes"]);
      assert.deepEqual(seen.get("x-forwarded-for"), ["127.0.0.1"]);
    });

    test("a slow body holds no upstream connection, and a stalled one ends in 408 without reaching the upstream", async () => {
      const before = upstream.connections.length;
      const answer = await rawExchange(plane.httpPort, `POST /slow-body HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100\r\n\r\n0123456789`);
      assert.equal(statusOf(answer), 408);
      assert.equal(upstream.connections.length, before, "an upstream connection was taken for an unfinished body");
      assert.ok(!upstream.targets.includes("/slow-body"));
      // A whole body, and one larger than the buffer (streamed), both arrive intact.
      const small = await send(plane.httpPort, { host: HOST, method: "POST", path: "/small-body", body: Buffer.alloc(100, 1) });
      assert.equal(small.body.toString(), "target=/small-body body=100\n");
      const large = await send(plane.httpPort, { host: HOST, method: "POST", path: "/large-body", body: Buffer.alloc(200 * 1024, 1) });
      assert.equal(large.body.toString(), `target=/large-body body=${200 * 1024}\n`);
    });

    test("`Transfer-Encoding: gzip, chunked` → 501; chunked on HTTP/1.0 → 400; neither reaches the upstream", async () => {
      const before = upstream.connections.length;
      const te = await rawExchange(plane.httpPort, `POST /te HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      assert.equal(statusOf(te), 501);
      const old = await rawExchange(plane.httpPort, `POST /te10 HTTP/1.0\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      assert.equal(statusOf(old), 400);
      assert.equal(upstream.connections.length, before);
      await stillServes();
    });
  });

  test(`[${kind}] --enable-underscores-in-headers forwards them`, async () => {
    const upstream = await startLoggingUpstream();
    const plane = await startDataPlane(kind, { underscoresInHeaders: true });
    try {
      await plane.setRoutes(routes(upstream.port));
      const r = await rawExchange(plane.httpPort, `GET /u HTTP/1.1\r\nHost: ${HOST}\r\nX_Custom: 1\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(r), 200);
      assert.deepEqual(upstreamHeadersOf(upstream, "/u").get("x_custom"), ["1"]);
    } finally {
      await plane.stop();
      await upstream.close();
    }
  });

  test(`[${kind}] request buffering off: the body streams, and a client that leaves mid-body frees the upstream connection`, async () => {
    const upstream = await startLoggingUpstream();
    const plane = await startDataPlane(kind, { requestBufferSize: 0, clientBodyTimeout: 60_000, upstreamKeepAliveTimeout: 200 });
    try {
      await plane.setRoutes(routes(upstream.port));
      const r = await send(plane.httpPort, { host: HOST, method: "POST", path: "/streamed", body: Buffer.alloc(1000, 1) });
      assert.equal(r.body.toString(), "target=/streamed body=1000\n");
      // Headers and part of the body, then the client goes away: the upstream request must not stay open.
      await rawExchange(plane.httpPort, `POST /abandoned HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 100000\r\n\r\npartial`, 300);
      await eventually("the upstream connection closes", async () => assert.equal(upstream.open, 0, "an upstream connection outlived its client"));
    } finally {
      await plane.stop();
      await upstream.close();
    }
  });
}
