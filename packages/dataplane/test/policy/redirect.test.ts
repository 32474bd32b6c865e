// Redirects through the real proxy: the 308 to HTTPS without its trailing "/" (kept with preserve-trailing-slash),
// permanent-/temporal-redirect, app-root, and from-to-www-redirect writing the HTTPS port; the backend never sees
// a redirected request. And server-alias, which serves another host name with an Ingress's rules.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { generateSelfSignedCertificate } from "@bollard/ingress";
import { type Backend, startBackend, tableOf, tlsSecret } from "../../../ingress/test/helpers/backends.ts";
import { send } from "../../../ingress/test/helpers/client.ts";
import { eachPlane, type RunningPlane } from "../planes.ts";

const P = "nginx.ingress.kubernetes.io";
const cert = generateSelfSignedCertificate("s.test", ["s.test", "p.test"]);

eachPlane("policy: redirects", (kind) => {
  let a: Backend;
  let b: Backend;
  let plane: RunningPlane;
  before(async () => {
    a = await startBackend("a");
    b = await startBackend("b");
    plane = await kind.start({ httpsRedirectPort: 8443 });
    const route = (host: string, path = "/") => ({ host, path, service: "a", ports: [a.port] });
    plane.setTable(
      tableOf(
        [
          { name: "secure", tls: [{ hosts: ["s.test"], secretName: "tls" }], routes: [route("s.test")] },
          { name: "slash", tls: [{ hosts: ["p.test"], secretName: "tls" }], annotations: { [`${P}/preserve-trailing-slash`]: "true" }, routes: [route("p.test")] },
          { name: "forced", annotations: { [`${P}/force-ssl-redirect`]: "true" }, routes: [route("f.test")] },
          { name: "moved", annotations: { [`${P}/permanent-redirect`]: "https://new.test$request_uri", [`${P}/permanent-redirect-code`]: "308" }, routes: [route("m.test")] },
          { name: "both", annotations: { [`${P}/permanent-redirect`]: "https://p.example", [`${P}/temporal-redirect`]: "https://t.example/" }, routes: [route("t.test")] },
          { name: "temp307", annotations: { [`${P}/temporal-redirect`]: "https://t.example$request_uri", [`${P}/temporal-redirect-code`]: "307" }, routes: [route("t307.test")] },
          // server-alias: its rules serve the aliases too, except a host another Ingress names
          {
            name: "aliased",
            annotations: { [`${P}/server-alias`]: "alias.test, Other.Alias.test, b.test" },
            routes: [route("main.test", "/api"), { host: "main.test", path: "/b", service: "b", ports: [b.port] }],
          },
          { name: "b-host", routes: [{ host: "b.test", service: "b", ports: [b.port] }] },
          { name: "root", annotations: { [`${P}/app-root`]: "/app1" }, routes: [route("r.test")] },
          { name: "www", annotations: { [`${P}/from-to-www-redirect`]: "true" }, routes: [route("w.test")] },
        ],
        [tlsSecret("tls", cert)],
      ),
    );
  });
  after(async () => {
    await plane.shutdown(1000);
    await a.close();
    await b.close();
  });

  const expectRedirect = async (host: string, path: string, status: number, location: string) => {
    const before = a.requests;
    const r = await send(plane.httpPort, { host, path });
    assert.equal(r.status, status, `${host}${path}`);
    assert.equal(r.headers.location, location, `${host}${path}`);
    assert.equal(a.requests, before, "the backend saw a redirected request");
  };

  test("the 308 to HTTPS drops the request URI's trailing slash, and names the HTTPS port", async () => {
    await expectRedirect("s.test", "/", 308, "https://s.test:8443");
    await expectRedirect("s.test", "/a/b/", 308, "https://s.test:8443/a/b");
    await expectRedirect("s.test", "/a/?q=1", 308, "https://s.test:8443/a/?q=1");
  });

  test("preserve-trailing-slash keeps it; force-ssl-redirect redirects a host without TLS", async () => {
    await expectRedirect("p.test", "/", 308, "https://p.test:8443/");
    await expectRedirect("p.test", "/a/", 308, "https://p.test:8443/a/");
    await expectRedirect("f.test", "/x?y", 308, "https://f.test:8443/x?y");
  });

  test("permanent-redirect with its code and variables; temporal-redirect wins over it", async () => {
    await expectRedirect("m.test", "/a/b?c=d", 308, "https://new.test/a/b?c=d");
    await expectRedirect("t.test", "/anything", 302, "https://t.example/");
  });

  test("temporal-redirect-code sets the temporal redirect's status", async () => {
    await expectRedirect("t307.test", "/a?b", 307, "https://t.example/a?b");
  });

  test("server-alias: the alias hosts are served by the Ingress's rules; a host no Ingress names is 404", async () => {
    const who = async (host: string, path: string) => {
      const r = await send(plane.httpPort, { host, path });
      return r.status === 200 ? JSON.parse(r.body.toString()).backend : r.status;
    };
    for (const host of ["main.test", "alias.test", "other.alias.test", "ALIAS.test:80"]) {
      assert.equal(await who(host, "/api/x"), "a", host);
      assert.equal(await who(host, "/b"), "b", host);
      assert.equal(await who(host, "/elsewhere"), 404, host);
    }
    assert.equal(await who("unnamed.test", "/api/x"), 404);
    // b.test is another Ingress's host: its own rules serve it, the alias takes nothing over
    assert.equal(await who("b.test", "/api/x"), "b");
  });

  test("app-root answers / only, with a 302 to the root on the host as sent", async () => {
    await expectRedirect("r.test:8080", "/?x=1", 302, "http://r.test:8080/app1");
    const r = await send(plane.httpPort, { host: "r.test", path: "/app1" });
    assert.equal(r.status, 200);
  });

  test("from-to-www-redirect: the www. twin redirects with the port written, the host itself serves", async () => {
    await expectRedirect("www.w.test", "/foo", 308, "http://w.test:8443/foo");
    await expectRedirect("WWW.w.test:80", "/foo/?a", 308, "http://w.test:8443/foo/?a");
    const r = await send(plane.httpPort, { host: "w.test", path: "/foo" });
    assert.equal(r.status, 200);
  });
});
