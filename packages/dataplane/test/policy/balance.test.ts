// Which backend and which endpoint serve, through the real proxy with real backends: canary Ingresses (header,
// cookie, weight), cookie affinity (over HTTP and HTTPS), upstream-hash-by, and service-upstream.
import assert from "node:assert/strict";
import { request } from "node:https";
import { after, before, describe, test } from "node:test";
import { compileRoutes } from "@bollard/ingress";
import { type Backend, deadPort, type Echo, type IngressSpec, snapshotOf, startBackend } from "../../../ingress/test/helpers/backends.ts";
import { json, send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";
const a = (annotations: Record<string, string>) => Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v]));

function httpsGet(port: number, host: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, servername: host, path, headers: { host, ...headers }, rejectUnauthorized: false, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    })
      .on("error", reject)
      .end();
  });
}

const setCookie = (headers: Record<string, string | string[] | undefined>): string | undefined => {
  const v = headers["set-cookie"];
  return Array.isArray(v) ? v[0] : v;
};
/** `name=value` of a Set-Cookie, to send back */
const pairOf = (cookie: string | undefined) => cookie?.split(";")[0] ?? "";

eachPlane("policy: balance", (kind) => {
  let stable: Backend;
  let canary: Backend;
  /** an endpoint beside stable that goes away once a session is pinned to it */
  let doomed: Backend;
  let plane: RunningPlane;
  before(async () => {
    stable = await startBackend("stable");
    canary = await startBackend("canary");
    doomed = await startBackend("doomed");
    plane = await kind.start({}, { https: true });
    const main = (name: string, host: string, annotations: Record<string, string> = {}, path = "/"): IngressSpec => ({ name, annotations: a(annotations), routes: [{ host, path, service: "stable", ports: [stable.port] }] });
    const alt = (name: string, host: string, annotations: Record<string, string>): IngressSpec => ({ name, annotations: a({ canary: "true", ...annotations }), routes: [{ host, service: "canary", ports: [canary.port] }] });
    // one Service with both backends as its endpoints, for affinity and hashing
    const both = (name: string, host: string, annotations: Record<string, string>, path = "/"): IngressSpec => ({ name, annotations: a(annotations), routes: [{ host, path, service: "both", ports: [stable.port, canary.port] }] });
    const dead = await deadPort();
    const snapshot = snapshotOf([
      main("m-header", "header.test"),
      alt("c-header", "header.test", { "canary-by-header": "X-Canary" }),
      main("m-value", "value.test"),
      alt("c-value", "value.test", { "canary-by-header": "X-Canary", "canary-by-header-value": "yes-please" }),
      main("m-pattern", "pattern.test"),
      alt("c-pattern", "pattern.test", { "canary-by-header": "X-Canary", "canary-by-header-pattern": "^v[0-9]+$" }),
      main("m-cookie", "cookie.test"),
      alt("c-cookie", "cookie.test", { "canary-by-cookie": "use_canary", "canary-weight": "100" }),
      main("m-w0", "w0.test"),
      alt("c-w0", "w0.test", { "canary-weight": "0" }),
      main("m-w100", "w100.test"),
      alt("c-w100", "w100.test", { "canary-weight": "100" }),
      main("m-t5", "t5.test"),
      alt("c-t5", "t5.test", { "canary-weight": "5", "canary-weight-total": "5" }),
      main("m-t0", "t0.test"),
      alt("c-t0", "t0.test", { "canary-weight": "0", "canary-weight-total": "5" }),
      // 5 of the default total (100) is not always
      main("m-t100", "t100.test"),
      alt("c-t100", "t100.test", { "canary-weight": "5" }),
      main("m-w50", "w50.test"),
      alt("c-w50", "w50.test", { "canary-weight": "50" }),
      alt("c-alone", "alone.test", { "canary-weight": "100" }),
      main("m-sticky", "sticky-canary.test", { affinity: "cookie", "session-cookie-name": "s" }),
      alt("c-sticky", "sticky-canary.test", { "canary-by-header": "X-Canary", affinity: "cookie", "session-cookie-name": "s" }),
      main("m-legacy", "legacy-canary.test", { affinity: "cookie", "session-cookie-name": "s" }),
      alt("c-legacy", "legacy-canary.test", { "canary-by-header": "X-Canary", affinity: "cookie", "session-cookie-name": "s", "affinity-canary-behavior": "legacy" }),
      both("sticky", "sticky.test", { affinity: "cookie", "affinity-mode": "persistent", "session-cookie-name": "route", "session-cookie-secure": "false" }, "/app"),
      both("sticky-path", "sticky-path.test", { affinity: "cookie", "session-cookie-path": "/", "session-cookie-samesite": "Strict", "session-cookie-max-age": "60" }, "/app"),
      both("sticky-expires", "sticky-expires.test", { affinity: "cookie", "session-cookie-domain": "sticky-expires.test", "session-cookie-expires": "3600" }),
      both("samesite-none", "samesite-none.test", { affinity: "cookie", "session-cookie-samesite": "None", "session-cookie-conditional-samesite-none": "true" }),
      { name: "stay", annotations: a({ affinity: "cookie" }), routes: [{ host: "stay.test", service: "doomed-or-stable", ports: [doomed.port, stable.port] }] },
      { name: "move", annotations: a({ affinity: "cookie", "session-cookie-change-on-failure": "true" }), routes: [{ host: "move.test", service: "doomed-or-stable", ports: [doomed.port, stable.port] }] },
      both("hash", "hash.test", { "upstream-hash-by": "$request_uri" }),
      { name: "upstream", annotations: a({ "service-upstream": "true" }), routes: [{ host: "upstream.test", service: "via-cluster-ip", ports: [dead] }] },
    ]);
    // service-upstream: the Service's ClusterIP (127.0.0.1 here) and port reach the stable backend; its endpoint
    // is a dead port, so an answer proves the endpoints were not used
    const svc = snapshot.services.find((s) => s.metadata.name === "via-cluster-ip");
    assert.ok(svc);
    svc.spec = { clusterIP: "127.0.0.1", ports: [{ name: "http", port: stable.port, targetPort: "http" }] };
    const ing = snapshot.ingresses.find((i) => i.metadata.name === "upstream");
    const backend = ing?.spec?.rules?.[0]?.http?.paths?.[0]?.backend?.service;
    assert.ok(backend);
    backend.port = { number: stable.port };
    plane.setTable(compileRoutes(snapshot));
  });
  after(async () => {
    await plane.shutdown(1000);
    await stable.close();
    await canary.close();
    await doomed.close();
  });

  const who = async (host: string, headers: Record<string, string> = {}, path = "/") => json<Echo>(await send(plane.httpPort, { host, path, headers })).backend;

  describe("canary", () => {
    test("by header: always, never, and other values go on to the weight (0 here)", async () => {
      assert.equal(await who("header.test", { "x-canary": "always" }), "canary");
      assert.equal(await who("header.test", { "x-canary": "never" }), "stable");
      assert.equal(await who("header.test", { "x-canary": "sometimes" }), "stable");
      assert.equal(await who("header.test"), "stable");
    });

    test("by header value", async () => {
      assert.equal(await who("value.test", { "x-canary": "yes-please" }), "canary");
      assert.equal(await who("value.test", { "x-canary": "always" }), "stable");
    });

    test("by header pattern", async () => {
      assert.equal(await who("pattern.test", { "x-canary": "v42" }), "canary");
      assert.equal(await who("pattern.test", { "x-canary": "v42x" }), "stable");
    });

    test("by cookie: never beats the weight of 100, always goes to the canary", async () => {
      assert.equal(await who("cookie.test", { cookie: "a=1; use_canary=never" }), "stable");
      assert.equal(await who("cookie.test", { cookie: "use_canary=always" }), "canary");
      assert.equal(await who("cookie.test"), "canary");
    });

    test("by weight: 0 never, 100 always, 50 sends to both over many requests", async () => {
      for (let i = 0; i < 10; i++) {
        assert.equal(await who("w0.test"), "stable");
        assert.equal(await who("w100.test"), "canary");
      }
      const seen = new Set<string>();
      for (let i = 0; i < 60 && seen.size < 2; i++) seen.add(await who("w50.test"));
      assert.deepEqual([...seen].sort(), ["canary", "stable"]);
    });

    test("canary-weight-total: 5 of 5 always, 0 of 5 never, 5 of the default 100 not always", async () => {
      for (let i = 0; i < 10; i++) {
        assert.equal(await who("t5.test"), "canary");
        assert.equal(await who("t0.test"), "stable");
      }
      let stableSeen = false;
      for (let i = 0; i < 200 && !stableSeen; i++) stableSeen = (await who("t100.test")) === "stable";
      assert.ok(stableSeen, "a weight of 5 out of 100 sent every request to the canary");
    });

    test("affinity-canary-behavior: sticky keeps a session the canary began there; legacy lets the rule decide again", async () => {
      for (const [host, after] of [
        ["sticky-canary.test", "canary"],
        ["legacy-canary.test", "stable"],
      ] as const) {
        const first = await send(plane.httpPort, { host, headers: { "x-canary": "always" } });
        assert.equal(json<Echo>(first).backend, "canary");
        const cookie = pairOf(setCookie(first.headers));
        assert.match(cookie, /^s=[0-9a-f]{16}$/);
        assert.equal(await who(host, { cookie }), after, host);
      }
    });

    test("a canary without a main Ingress serves nothing", async () => {
      assert.equal((await send(plane.httpPort, { host: "alone.test" })).status, 404);
    });
  });

  describe("affinity", () => {
    test("the first answer sets the cookie (Path = the Ingress path); with it, every request goes to the same endpoint", async () => {
      const first = await send(plane.httpPort, { host: "sticky.test", path: "/app/x" });
      const cookie = setCookie(first.headers);
      assert.match(cookie ?? "", /^route=[0-9a-f]{16}; Path=\/app; HttpOnly$/);
      assert.ok(!(cookie ?? "").includes("127.0.0.1"), "the cookie does not carry the address");
      const pinned = json<Echo>(first).backend;
      for (let i = 0; i < 6; i++) {
        const r = await send(plane.httpPort, { host: "sticky.test", path: "/app/y", headers: { cookie: pairOf(cookie) } });
        assert.equal(json<Echo>(r).backend, pinned);
        assert.equal(setCookie(r.headers), undefined, "a valid cookie is not set again");
      }
      // without the cookie, round-robin reaches the other endpoint too
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add(json<Echo>(await send(plane.httpPort, { host: "sticky.test", path: "/app" })).backend);
      assert.equal(seen.size, 2);
    });

    test("a cookie naming no endpoint gets a new one", async () => {
      const r = await send(plane.httpPort, { host: "sticky.test", path: "/app", headers: { cookie: "route=0123456789abcdef" } });
      assert.match(setCookie(r.headers) ?? "", /^route=[0-9a-f]{16}; /);
      assert.notEqual(pairOf(setCookie(r.headers)), "route=0123456789abcdef");
    });

    test("over HTTPS the cookie is Secure even with session-cookie-secure false", async () => {
      const r = await httpsGet(plane.httpsPort ?? 0, "sticky.test", "/app");
      assert.equal(r.status, 200);
      assert.match(setCookie(r.headers) ?? "", /^route=[0-9a-f]{16}; Path=\/app; Secure; HttpOnly$/);
    });

    test("session-cookie-path, samesite and max-age are written", async () => {
      const r = await send(plane.httpPort, { host: "sticky-path.test", path: "/app" });
      assert.match(setCookie(r.headers) ?? "", /^INGRESSCOOKIE=[0-9a-f]{16}; Path=\/; Max-Age=60; HttpOnly; SameSite=Strict$/);
    });

    test("session-cookie-conditional-samesite-none: no SameSite=None for a browser that misreads it", async () => {
      const chrome60 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.113 Safari/537.36";
      const chrome120 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
      const old = setCookie((await send(plane.httpPort, { host: "samesite-none.test", headers: { "user-agent": chrome60 } })).headers) ?? "";
      const current = setCookie((await send(plane.httpPort, { host: "samesite-none.test", headers: { "user-agent": chrome120 } })).headers) ?? "";
      assert.match(old, /^INGRESSCOOKIE=[0-9a-f]{16}; /);
      assert.doesNotMatch(old, /SameSite/);
      assert.match(current, /; SameSite=None$/);
    });

    test("session-cookie-change-on-failure: a session whose endpoint fails moves (new cookie) only when set", async () => {
      // a session pinned to the doomed endpoint while it lives
      let pinned = "";
      for (let i = 0; i < 6 && pinned === ""; i++) {
        const r = await send(plane.httpPort, { host: "stay.test" });
        if (json<Echo>(r).backend === "doomed") pinned = pairOf(setCookie(r.headers));
      }
      assert.match(pinned, /^INGRESSCOOKIE=[0-9a-f]{16}$/);
      await doomed.close();
      // (stay and move share the Service: the cookie names the same endpoint on both)
      const stay = await send(plane.httpPort, { host: "stay.test", headers: { cookie: pinned } });
      assert.equal(stay.status, 502, "without change-on-failure the session stays on its endpoint");
      const move = await send(plane.httpPort, { host: "move.test", headers: { cookie: pinned } });
      assert.equal(move.status, 200);
      assert.equal(json<Echo>(move).backend, "stable");
      const moved = pairOf(setCookie(move.headers));
      assert.match(moved, /^INGRESSCOOKIE=[0-9a-f]{16}$/);
      assert.notEqual(moved, pinned);
      assert.equal(json<Echo>(await send(plane.httpPort, { host: "move.test", headers: { cookie: moved } })).backend, "stable");
    });

    test("a new session whose first endpoint fails goes on to another, change-on-failure or not (as ingress-nginx)", async () => {
      await doomed.close();
      for (const host of ["stay.test", "move.test"]) {
        for (let i = 0; i < 4; i++) {
          const r = await send(plane.httpPort, { host });
          assert.equal(r.status, 200, host);
          assert.equal(json<Echo>(r).backend, "stable", host);
        }
      }
    });

    test("session-cookie-domain and -expires: Domain, and an Expires date in the future", async () => {
      const r = await send(plane.httpPort, { host: "sticky-expires.test" });
      const cookie = setCookie(r.headers) ?? "";
      assert.match(cookie, /^INGRESSCOOKIE=[0-9a-f]{16}; /);
      const attributes = new Map(
        cookie
          .split(";")
          .slice(1)
          .map((part) => {
            const [k = "", v = ""] = part.trim().split("=");
            return [k.toLowerCase(), v] as const;
          }),
      );
      assert.equal(attributes.get("domain"), "sticky-expires.test");
      const expires = Date.parse(attributes.get("expires") ?? "");
      assert.ok(Number.isFinite(expires), cookie);
      assert.ok(expires > Date.now(), `${cookie}: Expires is not in the future`);
      assert.equal(attributes.has("max-age"), false, cookie);
    });
  });

  test("upstream-hash-by: the same key always reaches the same endpoint; different keys reach both", async () => {
    const seen = new Set<string>();
    for (let n = 0; n < 20; n++) {
      const path = `/item/${n}`;
      const first = await who("hash.test", {}, path);
      seen.add(first);
      for (let i = 0; i < 3; i++) assert.equal(await who("hash.test", {}, path), first, path);
    }
    assert.equal(seen.size, 2);
  });

  test("service-upstream: the request goes to the ClusterIP and port, not to the endpoints", async () => {
    const r = await send(plane.httpPort, { host: "upstream.test" });
    assert.equal(r.status, 200);
    assert.equal(json<Echo>(r).backend, "stable");
  });
});
