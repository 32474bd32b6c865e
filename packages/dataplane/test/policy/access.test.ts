// Who may reach a route, how often, and CORS, through the real proxy: source ranges (403), basic auth (401),
// CORS preflights and headers, rate and connection limits, and the fail-closed cases (503). The client address
// is varied with X-Forwarded-For from a trusted peer (127.0.0.0/8), as a load balancer in front would send it.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import type { Secret } from "../../../ingress/src/index.ts";
import { type Backend, heldAnswer, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";
const a = (annotations: Record<string, string>) => Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v]));
const from = (address: string) => ({ "x-forwarded-for": address });
const basic = (credentials: string) => ({ authorization: `Basic ${Buffer.from(credentials).toString("base64")}` });

// htpasswd lines with known passwords: `openssl passwd -apr1 -salt r31.KnAq secret`, glibc crypt(3) bcrypt and
// SHA-512-crypt, and {SHA} as `htpasswd -s` makes it
const HTPASSWD = [
  "alice:$apr1$r31.KnAq$RAJphP9CxYVGpsfL.FKCH.",
  `bob:{SHA}${createHash("sha1").update("b0b's pw").digest("base64")}`,
  "carol:$2b$05$abcdefghijklmnopqrstuuhKF09ZYWwH2zP/0fwE1X8e/Q1YNx/hO",
  "dave:$6$rounds=5000$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1",
].join("\n");
const secret: Secret = { metadata: { name: "htpasswd", namespace: "default" }, data: { auth: Buffer.from(HTPASSWD).toString("base64") } };
// auth-secret-type: auth-map: one key per user, its value the hash (the same hashes as alice's and bob's lines)
const userMap: Secret = {
  metadata: { name: "users", namespace: "default" },
  stringData: { erin: "$apr1$r31.KnAq$RAJphP9CxYVGpsfL.FKCH.", frank: `{SHA}${createHash("sha1").update("b0b's pw").digest("base64")}` },
};

eachPlane("policy: access", (kind) => {
  let app: Backend;
  let plane: RunningPlane;
  const held = heldAnswer();
  before(async () => {
    app = await startBackend("app", (req, res) => (req.url === "/held" ? held.answer(res) : false));
    plane = await kind.start({ trustedProxies: ["127.0.0.0/8"] });
    const route = (host: string) => [{ host, path: "/", service: "app", ports: [app.port] }];
    plane.setTable(
      tableOf(
        [
          { name: "ranges", annotations: a({ "allowlist-source-range": "10.0.0.0/8, 2001:db8::/32", "denylist-source-range": "10.0.0.66" }), routes: route("ranges.test") },
          { name: "bad-range", annotations: a({ "whitelist-source-range": "10.0.0.0/8, 10.0.0.999" }), routes: route("bad-range.test") },
          { name: "auth", annotations: a({ "auth-type": "basic", "auth-secret": "htpasswd", "auth-realm": "Staff only" }), routes: route("auth.test") },
          { name: "auth-map", annotations: a({ "auth-type": "basic", "auth-secret": "users", "auth-secret-type": "auth-map" }), routes: route("auth-map.test") },
          // the map's Secret read as a file: it has no "auth" key, so the Ingress fails closed
          { name: "auth-map-as-file", annotations: a({ "auth-type": "basic", "auth-secret": "users" }), routes: route("auth-map-as-file.test") },
          { name: "auth-missing", annotations: a({ "auth-type": "basic", "auth-secret": "nope" }), routes: route("auth-missing.test") },
          { name: "cors", annotations: a({ "enable-cors": "true", "cors-allow-origin": "https://app.example, https://*.example.org", "cors-expose-headers": "X-Total" }), routes: route("cors.test") },
          { name: "cors-any", annotations: a({ "enable-cors": "true" }), routes: route("cors-any.test") },
          {
            name: "cors-set",
            annotations: a({ "enable-cors": "true", "cors-allow-origin": "https://app.example", "cors-allow-methods": "GET, PUT", "cors-allow-headers": "X-Custom, Content-Type", "cors-allow-credentials": "false", "cors-max-age": "600" }),
            routes: route("cors-set.test"),
          },
          { name: "rpm", annotations: a({ "limit-rpm": "1", "limit-burst-multiplier": "2", "limit-allowlist": "192.0.2.200" }), routes: route("rpm.test") },
          { name: "rpm-twin", annotations: a({ "limit-rpm": "1", "limit-burst-multiplier": "2", "limit-allowlist": "192.0.2.200" }), routes: route("rpm-twin.test") },
          { name: "rps", annotations: a({ "limit-rps": "1", "limit-burst-multiplier": "2" }), routes: route("rps.test") },
          { name: "rpm-legacy", annotations: a({ "limit-rpm": "1", "limit-burst-multiplier": "2", "limit-whitelist": "192.0.2.0/24" }), routes: route("rpm-legacy.test") },
          { name: "conn", annotations: a({ "limit-connections": "1" }), routes: route("conn.test") },
          { name: "all", annotations: a({ "allowlist-source-range": "10.0.0.0/8", "auth-type": "basic", "auth-secret": "htpasswd", "limit-rpm": "1", "limit-burst-multiplier": "1" }), routes: route("all.test") },
        ],
        [secret, userMap],
      ),
    );
  });
  after(async () => {
    held.release();
    await plane.shutdown(1000);
    await app.close();
  });

  /** statuses of `n` requests one after the other */
  const statuses = async (n: number, host: string, headers: Record<string, string> = {}) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await send(plane.httpPort, { host, headers })).status);
    return out;
  };

  describe("source ranges", () => {
    test("an allowed address reaches the backend; denied ones get 403 and never do", async () => {
      assert.equal((await send(plane.httpPort, { host: "ranges.test", headers: from("10.1.2.3") })).status, 200);
      assert.equal((await send(plane.httpPort, { host: "ranges.test", headers: from("2001:db8::7") })).status, 200);
      const before = app.requests;
      for (const address of ["10.0.0.66", "192.0.2.1", "2001:db9::1"]) {
        assert.equal((await send(plane.httpPort, { host: "ranges.test", headers: from(address) })).status, 403, address);
      }
      // the trusted peer itself (127.0.0.1, no X-Forwarded-For) is not in the list either
      assert.equal((await send(plane.httpPort, { host: "ranges.test" })).status, 403);
      assert.equal(app.requests, before);
    });

    test("an invalid entry fails the whole Ingress closed: 503 for everyone", async () => {
      const before = app.requests;
      assert.equal((await send(plane.httpPort, { host: "bad-range.test", headers: from("10.1.2.3") })).status, 503);
      assert.equal(app.requests, before);
    });
  });

  describe("basic auth", () => {
    test("no or wrong credentials: 401 with the realm, and the backend never sees the request", async () => {
      const before = app.requests;
      for (const headers of [{}, basic("alice:wrong"), basic("mallory:secret"), { authorization: "Bearer secret" }]) {
        const r = await send(plane.httpPort, { host: "auth.test", headers });
        assert.equal(r.status, 401);
        assert.equal(r.headers["www-authenticate"], 'Basic realm="Staff only"');
      }
      assert.equal(app.requests, before);
    });

    test("each htpasswd format lets its user in", async () => {
      for (const credentials of ["alice:secret", "bob:b0b's pw", "carol:x", "dave:secret"]) {
        assert.equal((await send(plane.httpPort, { host: "auth.test", headers: basic(credentials) })).status, 200, credentials);
      }
    });

    test("auth-secret-type auth-map: each key is a user, its value the hash", async () => {
      assert.equal((await send(plane.httpPort, { host: "auth-map.test", headers: basic("erin:secret") })).status, 200);
      assert.equal((await send(plane.httpPort, { host: "auth-map.test", headers: basic("frank:b0b's pw") })).status, 200);
      const before = app.requests;
      for (const credentials of ["erin:wrong", "frank:secret", "alice:secret"]) {
        assert.equal((await send(plane.httpPort, { host: "auth-map.test", headers: basic(credentials) })).status, 401, credentials);
      }
      assert.equal(app.requests, before);
      // without auth-secret-type the same Secret is read as an htpasswd file, which it is not: closed
      assert.equal((await send(plane.httpPort, { host: "auth-map-as-file.test", headers: basic("erin:secret") })).status, 503);
    });

    test("a missing Secret fails closed: 503 even with good credentials", async () => {
      assert.equal((await send(plane.httpPort, { host: "auth-missing.test", headers: basic("alice:secret") })).status, 503);
    });
  });

  describe("CORS", () => {
    test("a preflight from an allowed origin is answered 204 by the proxy", async () => {
      const before = app.requests;
      const r = await send(plane.httpPort, { host: "cors.test", method: "OPTIONS", headers: { origin: "https://a.example.org", "access-control-request-method": "PUT" } });
      assert.equal(r.status, 204);
      assert.equal(app.requests, before);
      assert.equal(r.headers["access-control-allow-origin"], "https://a.example.org");
      assert.equal(r.headers["access-control-allow-methods"], "GET, PUT, POST, DELETE, PATCH, OPTIONS");
      assert.equal(r.headers["access-control-allow-headers"], "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization");
      assert.equal(r.headers["access-control-allow-credentials"], "true");
      assert.equal(r.headers["access-control-max-age"], "1728000");
      assert.equal(r.headers["access-control-expose-headers"], "X-Total");
      assert.equal(r.headers.vary, "Origin");
    });

    test("a request from an allowed origin is forwarded and its answer gets the headers", async () => {
      const r = await send(plane.httpPort, { host: "cors.test", headers: { origin: "https://app.example" } });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body.toString()).backend, "app");
      assert.equal(r.headers["access-control-allow-origin"], "https://app.example");
      assert.equal(r.headers.vary, "Origin");
    });

    test("another origin gets no CORS header, and its OPTIONS goes to the backend", async () => {
      for (const origin of ["https://evil.example", "https://a.b.example.org", "http://app.example"]) {
        const r = await send(plane.httpPort, { host: "cors.test", method: "OPTIONS", headers: { origin } });
        assert.equal(r.status, 200, origin);
        assert.equal(JSON.parse(r.body.toString()).method, "OPTIONS");
        assert.equal(r.headers["access-control-allow-origin"], undefined, origin);
        assert.equal(r.headers.vary, "Origin");
      }
    });

    test("cors-allow-methods, -headers, -credentials false and -max-age are what the preflight answers", async () => {
      const r = await send(plane.httpPort, { host: "cors-set.test", method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "GET" } });
      assert.equal(r.status, 204);
      assert.equal(r.headers["access-control-allow-origin"], "https://app.example");
      assert.equal(r.headers["access-control-allow-methods"], "GET, PUT");
      assert.equal(r.headers["access-control-allow-headers"], "X-Custom, Content-Type");
      assert.equal(r.headers["access-control-allow-credentials"], undefined);
      assert.equal(r.headers["access-control-max-age"], "600");
    });

    test("`*` answers `*` (never the Origin echoed, credentials or not), every OPTIONS 204", async () => {
      const r = await send(plane.httpPort, { host: "cors-any.test", headers: { origin: "https://evil.example" } });
      assert.equal(r.headers["access-control-allow-origin"], "*");
      assert.equal(r.headers["access-control-allow-credentials"], "true");
      assert.equal(r.headers.vary, undefined);
      assert.equal((await send(plane.httpPort, { host: "cors-any.test", method: "OPTIONS" })).status, 204);
    });
  });

  describe("limits", () => {
    test("limit-rpm 1 with multiplier 2: a burst passes 1 + 2 requests per client address, then 503", async () => {
      assert.deepEqual(await statuses(6, "rpm.test", from("198.51.100.1")), [200, 200, 200, 503, 503, 503]);
      // another address has its own count; so has another Ingress with the same annotations
      assert.deepEqual(await statuses(4, "rpm.test", from("198.51.100.2")), [200, 200, 200, 503]);
      assert.deepEqual(await statuses(4, "rpm-twin.test", from("198.51.100.1")), [200, 200, 200, 503]);
    });

    test("limit-rps 1 with multiplier 2: a burst passes 1 + 2 requests, then 503", async () => {
      // (the bucket drains one request a second: on a slow machine a later one may pass again, so only the
      // first three are fixed, and a quick burst of eight meets the limit at least once)
      const got = await statuses(8, "rps.test", from("198.51.100.20"));
      assert.deepEqual(got.slice(0, 3), [200, 200, 200], String(got));
      assert.ok(got.slice(3).includes(503), String(got));
      assert.deepEqual([...new Set(got)].sort(), [200, 503], String(got));
    });

    test("limit-allowlist (or its old name limit-whitelist) is not limited", async () => {
      assert.deepEqual(await statuses(6, "rpm.test", from("192.0.2.200")), [200, 200, 200, 200, 200, 200]);
      assert.deepEqual(await statuses(6, "rpm-legacy.test", from("192.0.2.7")), [200, 200, 200, 200, 200, 200]);
      assert.deepEqual(await statuses(4, "rpm-legacy.test", from("198.51.100.30")), [200, 200, 200, 503]);
    });

    test("limit-connections 1: a second request while the first is answered gets 503, then the count frees", async () => {
      const first = send(plane.httpPort, { host: "conn.test", path: "/held", headers: from("198.51.100.9") });
      // (once the backend holds the first, it is admitted and counted: the very next request is refused)
      await held.arrived();
      assert.equal((await send(plane.httpPort, { host: "conn.test", headers: from("198.51.100.9") })).status, 503);
      held.release();
      assert.equal((await first).status, 200);
      // (the count is freed when the proxy has finished the answer, which may be just after the client read it:
      // asked again for up to 5 s, with a pause between tries, so a loaded machine is waited for, not raced)
      let third = 0;
      for (const until = Date.now() + 5000; third !== 200 && Date.now() < until; await delay(10)) {
        third = (await send(plane.httpPort, { host: "conn.test", headers: from("198.51.100.9") })).status;
      }
      assert.equal(third, 200);
    });

    test("in order: the source range (403) before the limit, the limit before auth (401)", async () => {
      assert.deepEqual(await statuses(3, "all.test", from("192.0.2.1")), [403, 403, 403]);
      // a guesser without the password is limited too
      assert.deepEqual(await statuses(3, "all.test", from("10.9.9.9")), [401, 401, 503]);
      assert.equal((await send(plane.httpPort, { host: "all.test", headers: { ...from("10.9.9.8"), ...basic("alice:secret") } })).status, 200);
    });
  });
});
