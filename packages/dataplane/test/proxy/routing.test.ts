// The data plane against real backends on loopback: routing, forwarding headers, bodies, limits, upstream
// failures and retries (the plane under test: ../planes.ts).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { request } from "node:http";
import { after, before, test } from "node:test";
import { type Backend, deadPort, type Echo, heldAnswer, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { json, rawExchange, send, statusOf } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

eachPlane("routing", (kind) => {
  let a: Backend;
  let b: Backend;
  let plane: RunningPlane;
  let port: number;
  before(async () => {
    a = await startBackend("a");
    b = await startBackend("b");
    plane = await kind.start();
    port = plane.httpPort;
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
    const r2 = await send(port, { host: "FOO.test:8080", path: "/apix" });
    assert.equal(json<Echo>(r2).backend, "a");
  });

  test("an encoded, dotted or doubled-slash path meets the route its plain path meets; the target goes upstream as sent", async () => {
    for (const target of ["/%61pi/v1", "/x/../api", "/x/%2e%2e/api/", "/x%2F..%2Fapi", "//api", "/./api?q=/x/../y"]) {
      const r = await send(port, { host: "foo.test", path: target });
      assert.equal(r.status, 200, target);
      assert.equal(json<Echo>(r).backend, "b", target);
      assert.equal(json<Echo>(r).url, target);
    }
    // Decoded once: `%2561` is the text `%61`, not `a`.
    assert.equal(json<Echo>(await send(port, { host: "foo.test", path: "/%2561pi" })).backend, "a");
  });

  test("a path that is not one → 400, never forwarded: malformed escape, encoded NUL, `..` above the root", async () => {
    const seen = a.requests + b.requests;
    for (const target of ["/a%zz", "/a%4", "/a%00b", "/../api", "/api/../../x", "/%2e%2e/api"]) {
      assert.equal((await send(port, { host: "foo.test", path: target })).status, 400, target);
    }
    assert.equal(a.requests + b.requests, seen);
  });

  test("no route → 404; a Service without ready endpoints → 503; a missing Service → 503; none forwarded", async () => {
    const seen = a.requests + b.requests;
    assert.equal((await send(port, { host: "other.test" })).status, 404);
    assert.equal((await send(port, { host: "foo.test", path: "/empty" })).status, 503);
    assert.equal((await send(port, { host: "foo.test", path: "/missing" })).status, 503);
    assert.equal(a.requests + b.requests, seen);
  });

  test("two Host headers or a non-origin-form target → 400", async () => {
    const raw = await rawExchange(port, "GET / HTTP/1.1\r\nHost: foo.test\r\nHost: evil.test\r\n\r\n");
    assert.equal(statusOf(raw), 400);
    const abs = await rawExchange(port, "GET http://foo.test/ HTTP/1.1\r\nHost: foo.test\r\n\r\n");
    assert.equal(statusOf(abs), 400);
  });

  test("the plane counts its answers by status class", async () => {
    const before = [2, 4, 5].map((c) => plane.responses(c as 2 | 4 | 5));
    await send(port, { host: "foo.test" });
    await send(port, { host: "foo.test", path: "/a%zz" });
    await send(port, { host: "other.test" });
    await send(port, { host: "foo.test", path: "/empty" });
    assert.deepEqual(
      [2, 4, 5].map((c, i) => plane.responses(c as 2 | 4 | 5) - (before[i] as number)),
      [1, 2, 1],
    );
  });

  test("round-robin over ready endpoints", async () => {
    const c = await startBackend("c");
    const d = await startBackend("d");
    try {
      plane.setTable(tableOf([{ name: "rr", routes: [{ host: "rr.test", service: "cd", ports: [c.port, d.port] }] }]));
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) seen.push(json<Echo>(await send(port, { host: "rr.test" })).backend);
      assert.deepEqual(seen.filter((s) => s === "c").length, 3);
      assert.deepEqual(seen.filter((s) => s === "d").length, 3);
      assert.notEqual(seen[0], seen[1]);
    } finally {
      await c.close();
      await d.close();
    }
  });
});

eachPlane("headers", (kind) => {
  let backend: Backend;
  before(async () => {
    backend = await startBackend("h", (req, res) => {
      if (req.url !== "/hop-response") return false;
      res.writeHead(200, { connection: "x-secret-hop", "x-secret-hop": "1", "keep-alive": "timeout=5", "x-kept": "yes", "set-cookie": ["a=1", "b=2"] });
      res.end("ok");
      return true;
    });
  });
  after(() => backend.close());
  const routes = () => tableOf([{ name: "h", routes: [{ host: "h.test", service: "h", ports: [backend.port] }] }]);

  test("hop-by-hop request headers are stripped, Host is kept, end-to-end headers pass", async () => {
    const plane = await kind.start();
    try {
      plane.setTable(routes());
      const r = await send(plane.httpPort, {
        host: "h.test:8443",
        headers: { connection: "keep-alive, x-hop", "x-hop": "1", "keep-alive": "timeout=3", te: "trailers", "proxy-authorization": "Basic x", "x-end": "kept", cookie: "c=1" },
      });
      const echo = json<Echo>(r);
      assert.equal(echo.headers.host, "h.test:8443");
      for (const h of ["x-hop", "keep-alive", "te", "proxy-authorization"]) assert.equal(echo.headers[h], undefined, h);
      assert.equal(echo.headers["x-end"], "kept");
      assert.equal(echo.headers.cookie, "c=1");
    } finally {
      await plane.shutdown(1000);
    }
  });

  test("X-Forwarded-* and X-Real-IP describe the peer; incoming ones from untrusted peers are replaced; X-Request-ID kept only if sane", async () => {
    const plane = await kind.start({ trustedProxies: ["10.0.0.0/8"] });
    try {
      plane.setTable(routes());
      const r = await send(plane.httpPort, {
        host: "h.test",
        headers: { "x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https", "x-forwarded-host": "evil.test", "x-forwarded-port": "1", "x-real-ip": "6.6.6.6", forwarded: "for=6.6.6.6" },
      });
      const h = json<Echo>(r).headers;
      assert.equal(h["x-forwarded-for"], "127.0.0.1");
      assert.equal(h["x-forwarded-proto"], "http");
      assert.equal(h["x-forwarded-host"], "h.test");
      assert.equal(h["x-forwarded-port"], String(plane.httpPort));
      assert.equal(h["x-real-ip"], "127.0.0.1");
      assert.equal(h.forwarded, undefined);
      assert.match(String(h["x-request-id"]), /^[0-9a-f-]{36}$/);
      const kept = json<Echo>(await send(plane.httpPort, { host: "h.test", headers: { "x-request-id": "abc-123" } }));
      assert.equal(kept.headers["x-request-id"], "abc-123");
      const replaced = json<Echo>(await send(plane.httpPort, { host: "h.test", headers: { "x-request-id": "bad id" } }));
      assert.match(String(replaced.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
    } finally {
      await plane.shutdown(1000);
    }
  });

  test("a trusted peer's X-Forwarded-* are kept and extended; X-Real-IP is the first untrusted hop", async () => {
    const plane = await kind.start({ trustedProxies: ["127.0.0.0/8", "10.0.0.0/8"] });
    try {
      plane.setTable(routes());
      const r = await send(plane.httpPort, {
        host: "h.test",
        headers: { "x-forwarded-for": "203.0.113.7, 10.1.2.3", "x-forwarded-proto": "https", "x-forwarded-host": "public.test", "x-forwarded-port": "443", "x-request-id": "abc-123" },
      });
      const h = json<Echo>(r).headers;
      assert.equal(h["x-forwarded-for"], "203.0.113.7, 10.1.2.3, 127.0.0.1");
      assert.equal(h["x-forwarded-proto"], "https");
      assert.equal(h["x-forwarded-host"], "public.test");
      assert.equal(h["x-forwarded-port"], "443");
      assert.equal(h["x-real-ip"], "203.0.113.7");
      assert.equal(h["x-request-id"], "abc-123");
    } finally {
      await plane.shutdown(1000);
    }
  });

  test("hop-by-hop response headers are stripped; repeated headers survive", async () => {
    const plane = await kind.start();
    try {
      plane.setTable(routes());
      const r = await send(plane.httpPort, { host: "h.test", path: "/hop-response" });
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-secret-hop"], undefined);
      assert.notEqual(r.headers["keep-alive"], "timeout=5");
      assert.equal(r.headers["x-kept"], "yes");
      assert.deepEqual(r.headers["set-cookie"], ["a=1", "b=2"]);
    } finally {
      await plane.shutdown(1000);
    }
  });
});

eachPlane("bodies", (kind) => {
  let backend: Backend;
  let plane: RunningPlane;
  const held = heldAnswer();
  const big = randomBytes(8 * 1024 * 1024);
  before(async () => {
    backend = await startBackend("body", async (req, res) => {
      if (req.url === "/download") {
        res.writeHead(200, { "content-length": big.length });
        res.end(big);
        return true;
      }
      if (req.url === "/trickle") return held.answer(res);
      return false;
    });
    plane = await kind.start({ maxBodySize: 16 * 1024 * 1024 });
    plane.setTable(tableOf([{ name: "b", routes: [{ host: "b.test", service: "body", ports: [backend.port] }] }]));
  });
  after(async () => {
    await plane.shutdown(1000);
    await backend.close();
  });

  test("large request and response bodies arrive intact, by Content-Length and chunked", async () => {
    const sha = createHash("sha256").update(big).digest("hex");
    const up = await send(plane.httpPort, { host: "b.test", method: "POST", body: big });
    assert.equal(json<Echo>(up).bodyBytes, big.length);
    assert.equal(json<Echo>(up).bodySha256, sha);
    async function* chunks() {
      for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536);
    }
    const chunked = await send(plane.httpPort, { host: "b.test", method: "PUT", body: chunks() });
    assert.equal(json<Echo>(chunked).bodySha256, sha);
    const down = await send(plane.httpPort, { host: "b.test", path: "/download" });
    assert.ok(down.body.equals(big));
  });

  test("a response is streamed: the first part arrives while the backend still holds the rest", async () => {
    const text = await new Promise<string>((resolve, reject) => {
      request({ port: plane.httpPort, host: "127.0.0.1", path: "/trickle", headers: { host: "b.test" }, agent: false }, (res) => {
        let seen = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          seen += c;
          if (seen === "first\n") held.release(); // the backend finishes only once we saw the first part
        });
        res.on("end", () => resolve(seen));
      })
        .on("error", reject)
        .end();
    });
    assert.equal(text, "first\nsecond\n");
  });
});

eachPlane("limits", (kind) => {
  let backend: Backend;
  let plane: RunningPlane;
  let port: number;
  before(async () => {
    backend = await startBackend("lim");
    // (a header limit of 8 KiB at least: the native plane's HTTP/1 parser takes no smaller buffer)
    plane = await kind.start({ maxBodySize: 1024, maxHeaderSize: 10 * 1024, headersTimeout: 300 });
    port = plane.httpPort;
    plane.setTable(tableOf([{ name: "l", routes: [{ host: "l.test", service: "lim", ports: [backend.port] }] }]));
  });
  after(async () => {
    await plane.shutdown(1000);
    await backend.close();
  });

  test("a body over the limit → 413, by Content-Length or while streaming chunks, never forwarded", async () => {
    const seen = backend.requests;
    assert.equal((await send(port, { host: "l.test", method: "POST", body: Buffer.alloc(1025) })).status, 413);
    async function* chunks() {
      for (let i = 0; i < 8; i++) yield Buffer.alloc(512);
    }
    assert.equal((await send(port, { host: "l.test", method: "POST", body: chunks() })).status, 413);
    assert.equal(backend.requests, seen);
    assert.equal((await send(port, { host: "l.test", method: "POST", body: Buffer.alloc(1024) })).status, 200);
  });

  test("headers far over the limit → 431", async () => {
    const raw = await rawExchange(port, `GET / HTTP/1.1\r\nHost: l.test\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`);
    assert.equal(statusOf(raw), 431);
  });

  test("two Content-Lengths, or a Transfer-Encoding other than chunked alone → 400, never forwarded", async () => {
    const seen = backend.requests;
    const badTe = await rawExchange(port, "POST / HTTP/1.1\r\nHost: l.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n");
    assert.equal(statusOf(badTe), 400);
    const twoLengths = await rawExchange(port, "POST / HTTP/1.1\r\nHost: l.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde");
    assert.equal(statusOf(twoLengths), 400);
    assert.equal(backend.requests, seen);
  });

  test("a client that never finishes its request line is cut off (slowloris) with 408", async () => {
    const raw = await rawExchange(port, "GET /slow", 10_000);
    assert.equal(statusOf(raw), 408);
  });

  test("a client that never finishes its headers is cut off (slowloris) with 408, never forwarded", async () => {
    const seen = backend.requests;
    const started = Date.now();
    const raw = await rawExchange(port, "GET / HTTP/1.1\r\nHost: l.test\r\nX-Slow: ", 10_000);
    assert.ok(Date.now() - started < 9_000, "closed by the plane, not by the test's own deadline");
    assert.equal(statusOf(raw), 408);
    assert.equal(backend.requests, seen);
  });

  test("Content-Length with Transfer-Encoding: read as chunked, forwarded once, and the connection closed after the answer (RFC 9112 §6.1)", async () => {
    const seen = backend.requests;
    const started = Date.now();
    // (a second request behind it on the same connection must never be read: the connection ends with the answer)
    const raw = await rawExchange(port, "POST / HTTP/1.1\r\nHost: l.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: l.test\r\n\r\n", 10_000);
    assert.ok(Date.now() - started < 9_000, "closed by the plane, not by the test's own deadline");
    assert.equal(statusOf(raw), 200);
    assert.equal(raw.match(/HTTP\/1\.1 /g)?.length, 1, raw);
    assert.equal(backend.requests, seen + 1);
  });
});

eachPlane("upstream failures", (kind) => {
  test("connect refused on one endpoint: idempotent requests go to another; all refused → 502", async () => {
    const live = await startBackend("live");
    const dead = await deadPort();
    const plane = await kind.start();
    try {
      plane.setTable(tableOf([{ name: "f", routes: [{ host: "f.test", service: "mixed", ports: [dead, live.port] }] }]));
      for (let i = 0; i < 6; i++) assert.equal((await send(plane.httpPort, { host: "f.test" })).status, 200);
      assert.ok(plane.retries() >= 1);
      plane.setTable(tableOf([{ name: "f", routes: [{ host: "f.test", service: "dead", ports: [dead] }] }]));
      assert.equal((await send(plane.httpPort, { host: "f.test" })).status, 502);
    } finally {
      await plane.shutdown(1000);
      await live.close();
    }
  });

  test("a POST whose connect is refused goes to another endpoint (nothing of it was sent, as nginx)", async () => {
    const live = await startBackend("live");
    const dead = await deadPort();
    const plane = await kind.start();
    try {
      plane.setTable(tableOf([{ name: "f", routes: [{ host: "f.test", service: "mixed", ports: [dead, live.port] }] }]));
      const statuses = new Set<number>();
      for (let i = 0; i < 4; i++) statuses.add((await send(plane.httpPort, { host: "f.test", method: "POST", body: "x" })).status);
      assert.deepEqual([...statuses], [200]);
      assert.ok(plane.retries() >= 1);
    } finally {
      await plane.shutdown(1000);
      await live.close();
    }
  });

  test("a POST the upstream took and then failed is not sent again: 502 (a GET is)", async () => {
    const live = await startBackend("live");
    const breaking = await startBackend("breaking", (req) => {
      req.socket.destroy();
      return true;
    });
    const plane = await kind.start();
    try {
      plane.setTable(tableOf([{ name: "f", routes: [{ host: "f.test", service: "mixed", ports: [breaking.port, live.port] }] }]));
      const posts = new Set<number>();
      const gets = new Set<number>();
      for (let i = 0; i < 4; i++) posts.add((await send(plane.httpPort, { host: "f.test", method: "POST", body: "x" })).status);
      for (let i = 0; i < 4; i++) gets.add((await send(plane.httpPort, { host: "f.test" })).status);
      assert.deepEqual([...posts].sort(), [200, 502]);
      assert.deepEqual([...gets], [200]);
    } finally {
      await plane.shutdown(1000);
      await live.close();
      await breaking.close();
    }
  });

  test("an upstream that does not answer within the read timeout → 504", async () => {
    const silent = await startBackend("silent", () => true); // takes the request, never answers
    const plane = await kind.start({ readTimeout: 300 });
    try {
      plane.setTable(tableOf([{ name: "s", routes: [{ host: "s.test", service: "silent", ports: [silent.port] }] }]));
      assert.equal((await send(plane.httpPort, { host: "s.test" })).status, 504);
    } finally {
      await plane.shutdown(1000);
      await silent.close();
    }
  });
});
