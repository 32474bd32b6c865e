// Regex routes and rewrites through the real proxy: use-regex on one Ingress makes every path of its host a
// regex (in the other Ingress too), tried longest path first; rewrite-target sends the captures upstream with the
// query kept; upstream-vhost and x-forwarded-prefix replace what the client sent.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Backend, type Echo, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { json, send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";

eachPlane("policy: regex paths and rewrites", (kind) => {
  let rewritten: Backend;
  let plain: Backend;
  let plane: RunningPlane;
  before(async () => {
    rewritten = await startBackend("rewritten");
    plain = await startBackend("plain");
    plane = await kind.start();
    plane.setTable(
      tableOf([
        { name: "plain", routes: [{ host: "r.test", path: "/foo", service: "plain", ports: [plain.port] }, { host: "other.test", path: "/foo", service: "plain", ports: [plain.port] }] },
        {
          name: "regex",
          annotations: { [`${P}/use-regex`]: "true", [`${P}/rewrite-target`]: "/new/$2" },
          routes: [
            { host: "r.test", path: "/something(/|$)(.*)", pathType: "ImplementationSpecific", service: "rewritten", ports: [rewritten.port] },
            { host: "r.test", path: "/foo/bar/[a-z]{3}", pathType: "ImplementationSpecific", service: "rewritten", ports: [rewritten.port] },
          ],
        },
        {
          name: "vhost",
          annotations: { [`${P}/upstream-vhost`]: "$service_name.internal", [`${P}/x-forwarded-prefix`]: "/v" },
          routes: [{ host: "v.test", path: "/", service: "plain", ports: [plain.port] }],
        },
      ]),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await rewritten.close();
    await plain.close();
  });

  const get = async (host: string, path: string, headers: Record<string, string> = {}) => {
    const r = await send(plane.httpPort, { host, path, headers });
    assert.equal(r.status, 200, `${host}${path}: ${r.body}`);
    return json<Echo>(r);
  };

  test("rewrite-target: the whole path becomes the target with the groups; the query is kept", async () => {
    const e = await get("r.test", "/something/a/b?x=1");
    assert.deepEqual([e.backend, e.url, e.headers.host], ["rewritten", "/new/a/b?x=1", "r.test"]);
    assert.equal((await get("r.test", "/SOMETHING")).url, "/new/");
    // a decoded group is encoded again
    assert.equal((await get("r.test", "/something/a%20b")).url, "/new/a%20b");
  });

  test("use-regex on one Ingress makes the other's /foo a regex too: /foobar matches it, case-insensitively", async () => {
    const e = await get("r.test", "/FOObar");
    assert.equal(e.backend, "plain");
    assert.equal(e.url, "/FOObar");
    // another host keeps Prefix matching
    assert.equal((await send(plane.httpPort, { host: "other.test", path: "/foobar" })).status, 404);
  });

  test("the longest path string is tried first, not the longest match", async () => {
    const e = await get("r.test", "/foo/bar/bar");
    assert.equal(e.backend, "rewritten");
    assert.equal(e.url, "/new/");
  });

  test("upstream-vhost sets Host (X-Forwarded-Host keeps the client's); x-forwarded-prefix replaces the client's", async () => {
    const e = await get("v.test", "/p", { "x-forwarded-prefix": "/evil" });
    assert.equal(e.headers.host, "plain.internal");
    assert.equal(e.headers["x-forwarded-host"], "v.test");
    assert.equal(e.headers["x-forwarded-prefix"], "/v");
    assert.equal(e.url, "/p");
  });
});
