// Failing closed through the real proxy: a route whose security annotation cannot be honoured answers 503 and
// never reaches its backend; the Ingress's other annotations and other Ingresses keep working.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Backend, startBackend, tableOf } from "../../../ingress/test/helpers/backends.ts";
import { send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";

eachPlane("policy: refuse", (kind) => {
  let a: Backend;
  let plane: RunningPlane;
  before(async () => {
    a = await startBackend("a");
    plane = await kind.start();
    plane.setTable(
      tableOf([
        { name: "locked", annotations: { [`${P}/auth-made-up`]: "x" }, routes: [{ host: "foo.test", path: "/private", service: "a", ports: [a.port] }] },
        { name: "open", annotations: { [`${P}/server-snippet`]: "return 200;" }, routes: [{ host: "foo.test", path: "/", service: "a", ports: [a.port] }] },
      ]),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await a.close();
  });

  test("the refusing route answers 503 and the backend never sees the request", async () => {
    const before = a.requests;
    const r = await send(plane.httpPort, { host: "foo.test", path: "/private/x" });
    assert.equal(r.status, 503);
    assert.equal(a.requests, before);
  });

  test("an unsupported non-security annotation does not stop its Ingress", async () => {
    const r = await send(plane.httpPort, { host: "foo.test", path: "/public" });
    assert.equal(r.status, 200);
  });
});
