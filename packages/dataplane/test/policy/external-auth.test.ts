// External authentication through the real proxy, with a real auth service: it answers by the request's
// Authorization header, and records what each auth request carried.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { after, before, test } from "node:test";
import { DEFAULT_GLOBALS } from "../../../ingress/src/annotations/globals.ts";
import { type Backend, deadPort, type Echo, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { json, send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";

eachPlane("policy: external auth", (kind) => {
  let app: Backend;
  let auth: Backend;
  let plane: RunningPlane;
  const seen: { url: string; method: string; headers: IncomingHttpHeaders }[] = [];
  before(async () => {
    app = await startBackend("app");
    auth = await startBackend("auth", (req, res) => {
      seen.push({ url: req.url ?? "", method: req.method ?? "", headers: req.headers });
      const token = req.headers.authorization ?? "";
      const cookie = ["session=fresh; Path=/"];
      if (token === "Bearer alice" || token === "Bearer bob") {
        res.writeHead(200, { "x-user": token.slice(7), "x-groups": "staff", "set-cookie": cookie }).end();
      } else if (token === "Bearer forbidden") res.writeHead(403, { "set-cookie": cookie }).end();
      else if (token === "Bearer broken") res.writeHead(502).end();
      else res.writeHead(401, { "www-authenticate": 'Bearer realm="test"', "set-cookie": cookie }).end();
      return true;
    });
    const dead = await deadPort();
    const base = `http://127.0.0.1:${auth.port}/check`;
    plane = await kind.start();
    const route = (name: string, path: string, annotations: Record<string, string>) => ({ name, annotations, routes: [{ host: "auth.test", path, service: "app", ports: [app.port] }] });
    plane.setTable(
      tableOf(
        [
          route("plain", "/plain", { [`${P}/auth-url`]: `${base}?u=$escaped_request_uri`, [`${P}/auth-response-headers`]: "X-User, X-Groups, X-Missing" }),
          route("signin", "/signin", { [`${P}/auth-url`]: base, [`${P}/auth-signin`]: "https://login.test/start", [`${P}/auth-always-set-cookie`]: "true" }),
          route("cached", "/cached", { [`${P}/auth-url`]: base, [`${P}/auth-cache-key`]: "same-for-everyone", [`${P}/auth-cache-duration`]: "200 10m", [`${P}/auth-response-headers`]: "X-User" }),
          route("post", "/post", { [`${P}/auth-url`]: base, [`${P}/auth-method`]: "post" }),
          route("extras", "/extras", {
            [`${P}/auth-url`]: base,
            [`${P}/auth-signin`]: "https://login.test/start",
            [`${P}/auth-signin-redirect-param`]: "next",
            [`${P}/auth-request-redirect`]: "https://app.test/landing",
            [`${P}/auth-proxy-set-headers`]: "auth-headers",
          }),
          route("no-headers", "/no-headers", { [`${P}/auth-url`]: base, [`${P}/auth-proxy-set-headers`]: "missing" }),
          route("down", "/down", { [`${P}/auth-url`]: `http://127.0.0.1:${dead}/check` }),
          route("broken", "/broken", { [`${P}/auth-url`]: "http://auth/$request_body" }),
          route("global", "/global", {}),
          route("optout", "/optout", { [`${P}/enable-global-auth`]: "false" }),
          // oauth2-proxy's setup: the auth server and the sign-in page at the request's own host (every rule exact)
          {
            name: "oauth2",
            annotations: { [`${P}/auth-url`]: `http://$host:${auth.port}/check`, [`${P}/auth-signin`]: "https://$host/oauth2/start?rd=$escaped_request_uri", [`${P}/enable-global-auth`]: "false" },
            routes: [{ host: "localhost", path: "/", service: "app", ports: [app.port] }],
          },
        ],
        [],
        { globals: { ...DEFAULT_GLOBALS, globalAuthUrl: base } },
        [{ metadata: { name: "auth-headers", namespace: "default" }, data: { "X-Tenant": "blue" } }],
      ),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await app.close();
    await auth.close();
  });

  const get = (path: string, token?: string, extra: Record<string, string> = {}) =>
    send(plane.httpPort, { host: "auth.test", path, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra } });

  test("2xx forwards with the named answer headers, replacing what the client sent; its cookie reaches the client", async () => {
    seen.length = 0;
    const r = await get("/plain/a?b=1", "alice", { "x-user": "mallory", "x-missing": "forged", "content-type": "text/plain" });
    assert.equal(r.status, 200);
    const echo = json<Echo>(r);
    assert.equal(echo.headers["x-user"], "alice");
    assert.equal(echo.headers["x-groups"], "staff");
    assert.equal(echo.headers["x-missing"], undefined, "a header the auth answer lacks is removed, never the client's own");
    assert.deepEqual(r.headers["set-cookie"], ["session=fresh; Path=/"]);
    const sub = seen[0];
    assert.ok(sub);
    assert.equal(sub.method, "GET");
    assert.equal(sub.url, "/check?u=%2Fplain%2Fa%3Fb%3D1");
    assert.equal(sub.headers.authorization, "Bearer alice");
    assert.equal(sub.headers["x-original-url"], "http://auth.test/plain/a?b=1");
    assert.equal(sub.headers["x-original-method"], "GET");
    assert.equal(sub.headers["x-auth-request-redirect"], "/plain/a?b=1");
    assert.equal(sub.headers["x-sent-from"], "nginx-ingress-controller");
    assert.equal(sub.headers["x-real-ip"], "127.0.0.1");
    assert.ok(sub.headers["x-request-id"]);
    assert.equal(sub.headers["content-type"], undefined);
  });

  test("auth-method: the auth service is asked with that method, whatever the client's", async () => {
    seen.length = 0;
    assert.equal((await get("/post/x", "alice")).status, 200);
    assert.equal((await get("/post/x")).status, 401);
    assert.deepEqual(
      seen.map((s) => s.method),
      ["POST", "POST"],
    );
    assert.equal(seen[0]?.headers["x-original-method"], "GET");
  });

  test("401 is the client's answer, with the auth service's challenge and without its cookie", async () => {
    const before = app.requests;
    const r = await get("/plain/x");
    assert.equal(r.status, 401);
    assert.equal(r.headers["www-authenticate"], 'Bearer realm="test"');
    assert.equal(r.headers["set-cookie"], undefined);
    assert.equal(app.requests, before);
  });

  test("401 with auth-signin is a 302 naming the original URL in rd; auth-always-set-cookie passes the cookie", async () => {
    const r = await get("/signin/p?q=1");
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "https://login.test/start?rd=http://auth.test%2Fsignin%2Fp%3Fq%3D1");
    assert.deepEqual(r.headers["set-cookie"], ["session=fresh; Path=/"]);
  });

  test("auth-signin-redirect-param names the sign-in's parameter; auth-request-redirect and auth-proxy-set-headers reach the auth service", async () => {
    const r = await get("/extras/p?q=1");
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "https://login.test/start?next=http://auth.test%2Fextras%2Fp%3Fq%3D1");
    seen.length = 0;
    assert.equal((await get("/extras/p", "alice", { "x-tenant": "forged" })).status, 200);
    const sub = seen[0];
    assert.ok(sub);
    assert.equal(sub.headers["x-auth-request-redirect"], "https://app.test/landing");
    assert.equal(sub.headers["x-tenant"], "blue");
  });

  test("auth-proxy-set-headers naming no ConfigMap fails closed: 503", async () => {
    const before = app.requests;
    assert.equal((await get("/no-headers/x", "alice")).status, 503);
    assert.equal(app.requests, before);
  });

  test("403 is 403 (no cookie), any other answer 500, an auth service that is down 500", async () => {
    const forbidden = await get("/plain/x", "forbidden");
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.headers["set-cookie"], undefined);
    assert.equal((await get("/plain/x", "broken")).status, 500);
    const before = app.requests;
    assert.equal((await get("/down/x", "alice")).status, 500);
    assert.equal(app.requests, before);
  });

  test("a broken auth-url fails closed: 503 for that Ingress, the backend never asked", async () => {
    const before = app.requests;
    assert.equal((await get("/broken/x", "alice")).status, 503);
    assert.equal(app.requests, before);
  });

  test("the cache never hands one client's success to another, whatever auth-cache-key says", async () => {
    seen.length = 0;
    const a1 = await get("/cached/1", "alice");
    const a2 = await get("/cached/2", "alice");
    assert.equal(json<Echo>(a1).headers["x-user"], "alice");
    assert.equal(json<Echo>(a2).headers["x-user"], "alice");
    assert.equal(seen.length, 1, "the second request of the same credentials came from the cache");
    const b = await get("/cached/3", "bob");
    assert.equal(json<Echo>(b).headers["x-user"], "bob");
    const none = await get("/cached/4");
    assert.equal(none.status, 401);
    assert.equal(seen.length, 3);
  });

  test("the global auth applies unless the Ingress opts out", async () => {
    assert.equal((await get("/global/x")).status, 401);
    assert.equal((await get("/global/x", "alice")).status, 200);
    assert.equal((await get("/optout/x")).status, 200);
  });

  test("$host as the auth server (oauth2-proxy's https://$host/oauth2/auth): the request's exact host is asked; a 401 signs in there", async () => {
    seen.length = 0;
    const ok = await send(plane.httpPort, { host: "localhost", path: "/app?x=1", headers: { authorization: "Bearer alice" } });
    assert.equal(ok.status, 200);
    assert.equal(seen.length, 1, "the auth server at the request's host was asked");
    const denied = await send(plane.httpPort, { host: "localhost", path: "/app?x=1" });
    assert.equal(denied.status, 302);
    assert.equal(denied.headers.location, "https://localhost/oauth2/start?rd=%2Fapp%3Fx%3D1");
  });
});
