// Custom error pages through the real proxy: the upstream's answer with a listed code is replaced by the error
// backend's (default-backend), which learns what happened from X-Code & co; and default-backend serves a route
// whose own Service has no endpoints.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Backend, type Echo, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { json, send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";

eachPlane("policy: custom errors", (kind) => {
  let app: Backend;
  let errors: Backend;
  let plane: RunningPlane;
  before(async () => {
    // /…/503 answers 503, and so on; anything else is the echo
    app = await startBackend("app", (req, res) => {
      const m = /\/(\d{3})(\?|$)/.exec(req.url ?? "");
      if (m === null) return false;
      res.writeHead(Number(m[1]), { "content-type": "text/plain" }).end("the app's own error page");
      return true;
    });
    errors = await startBackend("errors");
    plane = await kind.start();
    plane.setTable(
      tableOf([
        { name: "pages", annotations: { [`${P}/custom-http-errors`]: "404, 503", [`${P}/default-backend`]: "errors" }, routes: [{ host: "err.test", path: "/pages", service: "app", ports: [app.port] }] },
        { name: "fallback", annotations: { [`${P}/default-backend`]: "errors" }, routes: [{ host: "err.test", path: "/empty", service: "empty", ports: [] }] },
        { name: "bare", annotations: {}, routes: [{ host: "err.test", path: "/bare", service: "empty", ports: [] }] },
        { name: "error-pages", routes: [{ host: "pages.test", path: "/", service: "errors", ports: [errors.port] }] },
      ]),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await app.close();
    await errors.close();
  });

  test("a listed code is answered by the error backend's GET / with X-Code, X-Format, X-Original-URI…", async () => {
    const r = await send(plane.httpPort, { host: "err.test", path: "/pages/x/503?q=1", method: "POST", body: "payload", headers: { accept: "application/json", "x-request-id": "req-42" } });
    assert.equal(r.status, 200, "the client gets the error backend's status");
    const echo = json<Echo>(r);
    assert.equal(echo.backend, "errors");
    assert.equal(echo.method, "GET");
    assert.equal(echo.url, "/");
    assert.equal(echo.headers["x-code"], "503");
    assert.equal(echo.headers["x-format"], "application/json");
    assert.equal(echo.headers["x-original-uri"], "/pages/x/503?q=1");
    assert.equal(echo.headers["x-namespace"], "default");
    assert.equal(echo.headers["x-ingress-name"], "pages");
    assert.equal(echo.headers["x-service-name"], "app");
    assert.equal(echo.headers["x-service-port"], "80");
    assert.equal(echo.headers["x-request-id"], "req-42");
    assert.equal(echo.headers.host, "err.test");
  });

  test("a code not listed passes unchanged", async () => {
    const r = await send(plane.httpPort, { host: "err.test", path: "/pages/500" });
    assert.equal(r.status, 500);
    assert.equal(r.body.toString(), "the app's own error page");
    const ok = await send(plane.httpPort, { host: "err.test", path: "/pages/fine" });
    assert.equal(json<Echo>(ok).backend, "app");
  });

  test("default-backend serves the whole request while the route's Service has no endpoints; without it, 503", async () => {
    const r = await send(plane.httpPort, { host: "err.test", path: "/empty/thing?x=1" });
    assert.equal(r.status, 200);
    const echo = json<Echo>(r);
    assert.equal(echo.backend, "errors");
    assert.equal(echo.url, "/empty/thing?x=1");
    assert.equal((await send(plane.httpPort, { host: "err.test", path: "/bare/x" })).status, 503);
  });
});
