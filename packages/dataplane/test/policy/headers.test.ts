// Response headers through the real proxy: custom-headers from a ConfigMap on every answer of the route, HSTS on
// HTTPS answers of hosts with their own certificate only; and enable-access-log: "false" keeping a route's
// requests out of the access log.
import assert from "node:assert/strict";
import { request } from "node:https";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import { createLogger } from "@bollard/core";
import { generateSelfSignedCertificate } from "@bollard/ingress";
import { type Backend, startBackend, tableOf, tlsSecret } from "../../../ingress/test/helpers/backends.ts";
import { send } from "../../../ingress/test/helpers/client.ts";
import { eventually } from "../../../ingress/test/helpers/wait.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";
const cert = generateSelfSignedCertificate("h.test", ["h.test"]);

function httpsGet(port: number, host: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, servername: host, headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

eachPlane("policy: response headers and the access log", (kind) => {
  let a: Backend;
  let plane: RunningPlane;
  const lines: Record<string, unknown>[] = [];
  before(async () => {
    a = await startBackend("a", (_req, res) => {
      res.writeHead(200, { "x-frame-options": "SAMEORIGIN" }).end("ok");
      return true;
    });
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    plane = await kind.start({ logger: createLogger({ name: "headers", level: "info", destination }), accessLog: true, logInterval: 50 }, { https: true });
    const configMaps = [{ metadata: { name: "hdrs", namespace: "default" }, data: { "X-Frame-Options": "DENY", "X-Team": "edge" } }];
    plane.setTable(
      tableOf(
        [
          { name: "custom", annotations: { [`${P}/custom-headers`]: "hdrs", [`${P}/ssl-redirect`]: "false" }, tls: [{ hosts: ["h.test"], secretName: "tls" }], routes: [{ host: "h.test", service: "a", ports: [a.port] }] },
          { name: "missing", annotations: { [`${P}/custom-headers`]: "nope" }, routes: [{ host: "m.test", service: "a", ports: [a.port] }] },
          { name: "quiet", annotations: { [`${P}/enable-access-log`]: "false" }, routes: [{ host: "q.test", service: "a", ports: [a.port] }] },
        ],
        [tlsSecret("tls", cert)],
        undefined,
        configMaps,
      ),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await a.close();
  });

  test("custom-headers replace the upstream's and add theirs; a missing ConfigMap adds nothing and serves", async () => {
    const r = await send(plane.httpPort, { host: "h.test" });
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-frame-options"], "DENY");
    assert.equal(r.headers["x-team"], "edge");
    const m = await send(plane.httpPort, { host: "m.test" });
    assert.equal(m.status, 200);
    assert.equal(m.headers["x-frame-options"], "SAMEORIGIN");
    assert.equal(m.headers["x-team"], undefined);
  });

  test("HSTS on HTTPS answers for a host with its own certificate, never on plain HTTP or the default certificate", async () => {
    const tls = await httpsGet(plane.httpsPort ?? 0, "h.test");
    assert.equal(tls.status, 200);
    assert.equal(tls.headers["strict-transport-security"], "max-age=31536000; includeSubDomains");
    assert.equal(tls.headers["x-team"], "edge");
    assert.equal((await send(plane.httpPort, { host: "h.test" })).headers["strict-transport-security"], undefined);
    const fallback = await httpsGet(plane.httpsPort ?? 0, "q.test");
    assert.equal(fallback.status, 200);
    assert.equal(fallback.headers["strict-transport-security"], undefined);
  });

  test("enable-access-log: false leaves the route's requests out of the access log", async () => {
    await send(plane.httpPort, { host: "q.test", path: "/quiet" });
    await send(plane.httpPort, { host: "m.test", path: "/loud" });
    // lines leave in order: once the later request's line is there, the earlier one's would be too
    await eventually("the access line of m.test", async () => assert.ok(lines.some((l) => l.msg === "request" && l.target === "/loud")));
    assert.equal(lines.filter((l) => l.msg === "request" && l.target === "/quiet").length, 0);
  });
});
