// The native proxy against real HTTP backends on loopback: routing, forwarding headers, bodies, limits,
// upstream failures, retries, table swaps and the counters JavaScript reads.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type Backend, deadPort, type Echo, startBackend, tableOf } from "../../ingress/test/helpers/backends.ts";
import { json, rawExchange, send, statusOf } from "../../ingress/test/helpers/client.ts";
import { generateDefaultCertificate } from "@bollard/ingress";
import { createDataPlane, type DataPlane, type DataPlaneOptions } from "../src/index.ts";

const defaultCertificate = generateDefaultCertificate();

function startPlane(options: Partial<DataPlaneOptions> = {}): { plane: DataPlane; port: number } {
  const plane = createDataPlane({ defaultCertificate, ...options });
  const { httpPort } = plane.listen({ host: "127.0.0.1", httpPort: 0, workers: 2 });
  return { plane, port: httpPort };
}

describe("routing and forwarding", () => {
  let a: Backend;
  let b: Backend;
  let plane: DataPlane;
  let port: number;
  before(async () => {
    a = await startBackend("a");
    b = await startBackend("b");
    ({ plane, port } = startPlane({ trustedProxies: ["10.0.0.0/8"] }));
    plane.setTable(
      tableOf([
        {
          name: "web",
          routes: [
            { host: "foo.test", path: "/", service: "a", ports: [a.port] },
            { host: "foo.test", path: "/api", service: "b", ports: [b.port] },
            { host: "foo.test", path: "/empty", service: "no-endpoints", ports: [] },
            { host: "foo.test", path: "/missing", service: "not-there" },
          ],
        },
      ]),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await a.close();
    await b.close();
  });

  test("host and path pick the backend; the request target is passed unchanged", async () => {
    const r1 = await send(port, { host: "foo.test", path: "/api/v1?q=1&r=%20" });
    assert.equal(r1.status, 200);
    assert.equal(json<Echo>(r1).backend, "b");
    assert.equal(json<Echo>(r1).url, "/api/v1?q=1&r=%20");
    assert.equal(json<Echo>(await send(port, { host: "FOO.test:8080", path: "/apix" })).backend, "a");
  });

  test("an encoded, dotted or doubled-slash path meets the route its plain path meets; the target goes upstream as sent", async () => {
    for (const target of ["/%61pi/v1", "/x/../api", "/x/%2e%2e/api/", "/x%2F..%2Fapi", "//api", "/./api?q=/x/../y"]) {
      const r = await send(port, { host: "foo.test", path: target });
      assert.equal(r.status, 200, target);
      assert.equal(json<Echo>(r).backend, "b", target);
      assert.equal(json<Echo>(r).url, target);
    }
  });

  test("400 for a path that is not one, 404 without a route, 503 without endpoints, never forwarded", async () => {
    const seen = a.requests + b.requests;
    for (const target of ["/a%zz", "/a%00b", "/../api", "/%2e%2e/api"]) {
      assert.equal((await send(port, { host: "foo.test", path: target })).status, 400, target);
    }
    assert.equal((await send(port, { host: "other.test" })).status, 404);
    assert.equal((await send(port, { host: "foo.test", path: "/empty" })).status, 503);
    assert.equal((await send(port, { host: "foo.test", path: "/missing" })).status, 503);
    assert.equal(a.requests + b.requests, seen);
  });

  test("two Host headers or a non-origin-form target → 400", async () => {
    const two = await rawExchange(port, "GET / HTTP/1.1\r\nHost: foo.test\r\nHost: other.test\r\n\r\n");
    assert.equal(statusOf(two), 400);
    const absolute = await rawExchange(port, "GET http://foo.test/ HTTP/1.1\r\nHost: foo.test\r\n\r\n");
    assert.equal(statusOf(absolute), 400);
  });

  test("hop-by-hop headers are dropped both ways, Host kept, X-Forwarded-* and X-Real-IP set from the peer", async () => {
    const r = await send(port, {
      host: "foo.test",
      path: "/api",
      headers: { connection: "x-secret, keep-alive", "x-secret": "1", te: "trailers", "x-forwarded-for": "6.6.6.6", "x-real-ip": "6.6.6.6", "x-keep": "yes" },
    });
    const echo = json<Echo>(r);
    assert.equal(echo.headers.host, "foo.test");
    assert.equal(echo.headers["x-keep"], "yes");
    assert.equal(echo.headers["x-secret"], undefined);
    assert.equal(echo.headers.te, undefined);
    assert.equal(echo.headers["x-forwarded-for"], "127.0.0.1"); // loopback is not a trusted proxy here
    assert.equal(echo.headers["x-real-ip"], "127.0.0.1");
    assert.equal(echo.headers["x-forwarded-proto"], "http");
    assert.equal(echo.headers["x-forwarded-host"], "foo.test");
    assert.equal(echo.headers["x-forwarded-port"], String(port));
    assert.match(String(echo.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
    const kept = json<Echo>(await send(port, { host: "foo.test", path: "/api", headers: { "x-request-id": "abc-123" } }));
    assert.equal(kept.headers["x-request-id"], "abc-123");
    const replaced = json<Echo>(await send(port, { host: "foo.test", path: "/api", headers: { "x-request-id": "bad id" } }));
    assert.notEqual(replaced.headers["x-request-id"], "bad id");
  });

  test("bodies stream both ways, Content-Length and chunked", async () => {
    const body = randomBytes(300 * 1024);
    const sha = createHash("sha256").update(body).digest("hex");
    const fixed = json<Echo>(await send(port, { host: "foo.test", path: "/api", method: "POST", body }));
    assert.equal(fixed.bodySha256, sha);
    const chunked = json<Echo>(
      await send(port, {
        host: "foo.test",
        path: "/api",
        method: "POST",
        body: (async function* () {
          yield body.subarray(0, 1000);
          yield body.subarray(1000);
        })(),
      }),
    );
    assert.equal(chunked.bodySha256, sha);
    assert.equal(chunked.bodyBytes, body.length);
  });

  test("the counters count, read from JavaScript", () => {
    const c = plane.counters();
    assert.ok(c.requests >= 10);
    assert.ok(c.responses2xx >= 5);
    assert.ok(c.responses4xx >= 5);
    assert.ok(c.responses5xx >= 2);
    assert.ok(c.connectionsOpened >= 10);
    assert.equal(c.tableSwaps, 1);
  });
});

describe("trusted proxies", () => {
  test("X-Forwarded-* from a trusted peer are believed and extended", async () => {
    const backend = await startBackend("t");
    const { plane, port } = startPlane({ trustedProxies: ["127.0.0.0/8"] });
    try {
      plane.setTable(tableOf([{ name: "t", routes: [{ host: "t.test", service: "t", ports: [backend.port] }] }]));
      const echo = json<Echo>(
        await send(port, { host: "t.test", headers: { "x-forwarded-for": "203.0.113.7, 127.0.0.2", "x-forwarded-proto": "https", "x-forwarded-host": "public.example", "x-forwarded-port": "443" } }),
      );
      assert.equal(echo.headers["x-forwarded-for"], "203.0.113.7, 127.0.0.2, 127.0.0.1");
      assert.equal(echo.headers["x-real-ip"], "203.0.113.7");
      assert.equal(echo.headers["x-forwarded-proto"], "https");
      assert.equal(echo.headers["x-forwarded-host"], "public.example");
      assert.equal(echo.headers["x-forwarded-port"], "443");
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });
});

describe("limits and upstream failures", () => {
  test("413 over the body limit (Content-Length up front, chunked while streaming); 431 over the header limit", async () => {
    // Reads bodies to the end; one the proxy cuts off (over the limit while streaming) is just dropped.
    const backend = await startBackend("l", async (req, res) => {
      let bytes = 0;
      try {
        for await (const chunk of req) bytes += (chunk as Buffer).length;
      } catch {
        return true;
      }
      res.end(String(bytes));
      return true;
    });
    const { plane, port } = startPlane({ maxBodySize: 1000 });
    try {
      plane.setTable(tableOf([{ name: "l", routes: [{ host: "l.test", service: "l", ports: [backend.port] }] }]));
      assert.equal((await send(port, { host: "l.test", method: "POST", body: Buffer.alloc(1001) })).status, 413);
      assert.equal(backend.requests, 0);
      const chunked = await send(port, {
        host: "l.test",
        method: "POST",
        body: (async function* () {
          yield Buffer.alloc(600);
          yield Buffer.alloc(600);
        })(),
      }).catch((err: Error) => err);
      assert.ok(chunked instanceof Error || chunked.status === 413, "a chunked body over the limit is cut or answered 413");
      const big = await rawExchange(port, `GET / HTTP/1.1\r\nHost: l.test\r\nx-big: ${"a".repeat(20 * 1024)}\r\n\r\n`);
      assert.equal(statusOf(big), 431);
      assert.equal((await send(port, { host: "l.test", method: "POST", body: Buffer.alloc(1000) })).status, 200);
    } finally {
      await plane.shutdown(1000);
      await backend.close();
    }
  });

  test("a refused endpoint: an idempotent request is retried on another endpoint; a POST with a body gets 502", async () => {
    const live = await startBackend("live");
    const dead = await deadPort();
    const { plane, port } = startPlane();
    try {
      plane.setTable(tableOf([{ name: "r", routes: [{ host: "r.test", service: "r", ports: [dead, live.port] }] }]));
      for (let i = 0; i < 4; i++) assert.equal((await send(port, { host: "r.test" })).status, 200);
      assert.ok(plane.counters().upstreamRetries >= 1);
      const statuses = new Set<number>();
      for (let i = 0; i < 4; i++) statuses.add((await send(port, { host: "r.test", method: "POST", body: "x" })).status);
      assert.deepEqual([...statuses].sort(), [200, 502]);
      plane.setTable(tableOf([{ name: "r", routes: [{ host: "r.test", service: "r", ports: [dead] }] }]));
      assert.equal((await send(port, { host: "r.test" })).status, 502);
    } finally {
      await plane.shutdown(1000);
      await live.close();
    }
  });

  test("an upstream silent past the read timeout → 504", async () => {
    const silent = await startBackend("silent", async (_req, res) => {
      await new Promise((r) => setTimeout(r, 2_000));
      res.end("late"); // to a connection the proxy has given up on
      return true;
    });
    const { plane, port } = startPlane({ readTimeout: 300 });
    try {
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "s.test", service: "s", ports: [silent.port] }] }]));
      assert.equal((await send(port, { host: "s.test" })).status, 504);
      assert.equal(plane.counters().upstreamTimeouts, 1);
    } finally {
      await plane.shutdown(1000);
      await silent.close();
    }
  });
});

describe("table swaps", () => {
  test("a request in flight keeps its table; the next one meets the new table; nothing is reopened", async () => {
    let release: () => void = () => {};
    const slow = await startBackend("old", async (_req, res) => {
      await new Promise<void>((r) => {
        release = r;
      });
      res.end("old");
      return true;
    });
    const fresh = await startBackend("new");
    const { plane, port } = startPlane();
    try {
      plane.setTable(tableOf([{ name: "w", routes: [{ host: "w.test", service: "old", ports: [slow.port] }] }]));
      const inFlight = send(port, { host: "w.test" });
      while (slow.requests === 0) await new Promise((r) => setTimeout(r, 10));
      plane.setTable(tableOf([{ name: "w", routes: [{ host: "w.test", service: "new", ports: [fresh.port] }] }]));
      assert.equal(json<Echo>(await send(port, { host: "w.test" })).backend, "new");
      release();
      assert.equal((await inFlight).body.toString(), "old");
    } finally {
      await plane.shutdown(1000);
      await slow.close();
      await fresh.close();
    }
  });

  test("the 308 to HTTPS names the Host and the redirect port", async () => {
    const { plane, port } = startPlane({ httpsRedirectPort: 8443 });
    try {
      const table = tableOf([{ name: "tls", routes: [{ host: "secure.test", service: "x", ports: [1] }], tls: [{ hosts: ["secure.test"], secretName: "none" }] }]);
      plane.setTable(table);
      const r = await send(port, { host: "Secure.test", path: "/p?q=1" });
      assert.equal(r.status, 308);
      assert.equal(r.headers.location, "https://secure.test:8443/p?q=1");
    } finally {
      await plane.shutdown(1000);
    }
  });
});

test("shutdown lets a request in flight finish, then the port is closed", async () => {
  const slow = await startBackend("slow", async (_req, res) => {
    await new Promise((r) => setTimeout(r, 300));
    res.end("done");
    return true;
  });
  const { plane, port } = startPlane();
  plane.setTable(tableOf([{ name: "d", routes: [{ host: "d.test", service: "d", ports: [slow.port] }] }]));
  const inFlight = send(port, { host: "d.test" });
  while (slow.requests === 0) await new Promise((r) => setTimeout(r, 10));
  await plane.shutdown(5_000);
  assert.equal((await inFlight).body.toString(), "done");
  await assert.rejects(send(port, { host: "d.test" }), /ECONNREFUSED/);
  await slow.close();
});
