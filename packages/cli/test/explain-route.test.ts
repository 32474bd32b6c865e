// `bollard explain route` run as users run it: over the same case table as the route compiler's tests, and
// side by side with what the data plane actually answers to the same raw request.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { readManifests } from "@bollard/core";
import { compileRoutes, generateSelfSignedCertificate, mergeSnapshots, snapshotFromObjects } from "@bollard/ingress";
import { eachPlane, type RunningPlane } from "../../dataplane/test/planes.ts";
import { type Backend, startBackend } from "../../ingress/test/helpers/backends.ts";
import { rawExchange } from "../../ingress/test/helpers/client.ts";
import { loadRouteCases } from "../../ingress/test/route-cases.ts";
import { runBollard } from "./helpers.ts";

const explain = (args: string[]) => runBollard(["explain", "route", ...args]);

/** The answer's fields that the case table names (the route; the status where it says one). */
const pick = (answer: Record<string, unknown>, like: object) => Object.fromEntries(Object.keys(like).map((k) => [k, answer[k]]));

for (const c of loadRouteCases()) {
  test(`explain route over ${c.name}: ${c.matches.length} URLs, one answer each`, async () => {
    const { code, stdout, stderr } = await explain(["-f", c.fixture, ...c.matches.flatMap((m) => ["--url", m.url])]);
    assert.equal(code, 0, stderr);
    const answers = stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(answers.length, c.matches.length, "one JSON line per --url");
    c.matches.forEach((m, i) => {
      const answer = answers[i] as Record<string, unknown>;
      assert.deepEqual(pick(answer, m.expect), m.expect, m.url);
      if (m.expect.match) assert.ok(answer.status === null || [308, 503].includes(answer.status as number), `${m.url}: status ${answer.status}`);
    });
  });
}

describe("explain route input", () => {
  const cases = loadRouteCases();
  const hosts = cases.find((c) => c.name === "hosts");
  const paths = cases.find((c) => c.name === "path-types");
  assert.ok(hosts && paths);

  test("reads several -f and directories, merging their objects", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-"));
    try {
      copyFileSync(paths.fixture, join(dir, "paths.yaml"));
      writeFileSync(join(dir, "notes.txt"), "not a manifest");
      const { code, stdout } = await explain(["-f", dir, "-f", hosts.fixture, "--url", "http://foo.com/aaa/x"]);
      assert.equal(code, 0);
      // foo.com now has the rules of both fixtures; /aaa comes from path-types.
      assert.equal(JSON.parse(stdout).service, "aaa");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("kinds it does not read are skipped, even ones named like object properties", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-"));
    try {
      writeFileSync(join(dir, "odd.yaml"), "kind: constructor\nmetadata: {name: a}\n---\nkind: toString\nmetadata: {name: b}\n");
      const r = await explain(["-f", paths.fixture, "-f", dir, "--url", "http://foo.com/aaa/x"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).service, "aaa");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an invalid file exits 2 with the file named on stderr", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bollard-explain-"));
    try {
      const bad = join(dir, "bad.yaml");
      writeFileSync(bad, "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n");
      const r = await explain(["-f", bad, "--url", "http://foo.com/"]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /bad\.yaml: Service \(object 1\) has no metadata\.name/);
      writeFileSync(bad, "kind: [\n");
      const r2 = await explain(["-f", bad, "--url", "http://foo.com/"]);
      assert.equal(r2.code, 2);
      assert.match(r2.stderr, /bad\.yaml: document 1/);
      const r3 = await explain(["-f", join(dir, "missing.yaml"), "--url", "http://foo.com/"]);
      assert.equal(r3.code, 2);
      assert.match(r3.stderr, /missing\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad flags exit 2", async () => {
    assert.equal((await explain(["-f", hosts.fixture])).code, 2);
    assert.equal((await explain(["--url", "http://foo.com/"])).code, 2);
    assert.equal((await explain(["-f", hosts.fixture, "--url", "not a url"])).code, 2);
    assert.equal((await explain(["-f", hosts.fixture, "--url", "http://x/", "--bogus"])).code, 2);
    assert.equal((await explain(["-f", hosts.fixture, "--url", "ftp://foo.com/"])).code, 2);
    assert.equal((await explain(["-f", hosts.fixture, "--url", "http://foo.com/", "--host", "foo.com"])).code, 2);
    assert.equal((await explain(["-f", hosts.fixture, "--host", "foo.com"])).code, 2);
    assert.equal((await explain(["-f", hosts.fixture, "--target", "/"])).code, 2);
  });
});

// The outcome explain reports is the one the proxy gives: each case goes to `bollard explain route` and, as the
// same raw bytes, to a data plane serving the same manifests (endpoints on loopback, which only files allow).
describe("explain route answers what the proxy answers", () => {
  let live: Backend;
  let dir: string;
  const cert = generateSelfSignedCertificate("secure.test", ["secure.test", "optout.test"]);
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const service = (name: string) => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: "shop" }, spec: { ports: [{ name: "http", port: 80 }] } });
  const rule = (host: string, paths: [string, string][]) => ({
    host,
    http: { paths: paths.map(([path, svc]) => ({ path, pathType: "Prefix", backend: { service: { name: svc, port: { number: 80 } } } })) },
  });
  const objects = () => [
    { apiVersion: "networking.k8s.io/v1", kind: "IngressClass", metadata: { name: "bollard" }, spec: { controller: "bollard.dev/ingress-controller" } },
    service("live"),
    service("empty"),
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "live-1", namespace: "shop", labels: { "kubernetes.io/service-name": "live" } },
      addressType: "IPv4",
      ports: [{ name: "http", port: live.port }],
      endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }],
    },
    { apiVersion: "v1", kind: "Secret", metadata: { name: "tls", namespace: "shop" }, type: "kubernetes.io/tls", data: { "tls.crt": b64(cert.cert), "tls.key": b64(cert.key) } },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "web", namespace: "shop", creationTimestamp: "2026-01-01T00:00:00Z" },
      spec: {
        ingressClassName: "bollard",
        tls: [{ hosts: ["secure.test"], secretName: "tls" }],
        rules: [rule("app.test", [["/", "live"], ["/api", "live"], ["/empty", "empty"], ["/gone", "missing"]]), rule("secure.test", [["/", "live"]])],
      },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "optout", namespace: "shop", annotations: { "bollard.dev/ssl-redirect": "false" }, creationTimestamp: "2026-01-01T00:00:01Z" },
      spec: { ingressClassName: "bollard", tls: [{ hosts: ["optout.test"], secretName: "tls" }], rules: [rule("optout.test", [["/", "live"]])] },
    },
  ];
  // host, raw target, and what both must say: the proxy's own status, or null (proxied: the backend answers 200)
  const cases: { host: string; target: string; status: number | null; location?: string }[] = [
    { host: "app.test", target: "/api/x?q=/../y", status: null },
    { host: "APP.test:8080", target: "/%61pi/../api//v1", status: null },
    { host: "app.test", target: "/../foo", status: 400 },
    { host: "app.test", target: "/%2e%2e/foo", status: 400 },
    { host: "app.test", target: "/foo%zz", status: 400 },
    { host: "app.test", target: "/a%00b", status: 400 },
    { host: "nowhere.test", target: "/", status: 404 },
    { host: "app.test", target: "/empty/x", status: 503 },
    { host: "app.test", target: "/gone", status: 503 },
    { host: "secure.test", target: "/a/../b?c=%2e", status: 308, location: "https://secure.test/a/../b?c=%2e" },
    { host: "optout.test", target: "/x", status: null },
  ];

  before(async () => {
    live = await startBackend("live");
    dir = mkdtempSync(join(tmpdir(), "bollard-explain-proxy-"));
    writeFileSync(join(dir, "objects.yaml"), objects().map((o) => JSON.stringify(o)).join("\n---\n"));
  });
  after(async () => {
    await live.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const explained = new Map<string, Record<string, unknown>>();
  test("explain reports each outcome, by --url and by --host + --target alike", async () => {
    const byUrl = await explain(["-f", dir, ...cases.flatMap((c) => ["--url", `http://${c.host}${c.target}`])]);
    assert.equal(byUrl.code, 0, byUrl.stderr);
    const answers = byUrl.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const [i, c] of cases.entries()) {
      const answer = answers[i] as Record<string, unknown>;
      if (i % 4 === 2) {
        const byParts = await explain(["-f", dir, "--host", c.host, "--target", c.target]);
        assert.deepEqual(JSON.parse(byParts.stdout), answer, `${c.host} ${c.target}`);
      }
      assert.equal(answer.status, c.status, `${c.host} ${c.target}: ${JSON.stringify(answer)}`);
      if (c.location !== undefined) assert.equal(answer.location, c.location);
      if (c.status === null) assert.deepEqual(answer.endpoints, [`127.0.0.1:${live.port}`]);
      if (c.status === 400 || c.status === 404) assert.equal(answer.match, false);
      explained.set(`${c.host} ${c.target}`, answer);
    }
    const reason = (t: string) => explained.get(`app.test ${t}`)?.reason;
    assert.equal(reason("/empty/x"), "no ready endpoint");
    assert.equal(reason("/gone"), "Service shop/missing not found");
    // over HTTPS there is no redirect: the request is proxied
    const https = JSON.parse((await explain(["-f", dir, "--host", "secure.test", "--target", "/a", "--https"])).stdout) as Record<string, unknown>;
    assert.equal(https.status, null);
    assert.equal(https.service, "live");
  });

  eachPlane("the proxy", (kind) => {
    let plane: RunningPlane;
    before(async () => {
      plane = await kind.start();
      plane.setTable(compileRoutes(mergeSnapshots((await readManifests([dir])).map((f) => snapshotFromObjects(f.objects, f.path)))));
    });
    after(() => plane.shutdown(1000));

    test("answers every case as explain said", async () => {
      assert.equal(explained.size, cases.length, "the explain test ran first");
      for (const c of cases) {
        const raw = await rawExchange(plane.httpPort, `GET ${c.target} HTTP/1.1\r\nHost: ${c.host}\r\nConnection: close\r\n\r\n`);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
        const said = explained.get(`${c.host} ${c.target}`);
        assert.equal(status, (said?.status as number | null) ?? 200, `${c.host} ${c.target}: ${raw.slice(0, 200)}`);
        if (said?.status === null) assert.ok(raw.includes('"backend":"live"'), `${c.host} ${c.target}: not the live backend`);
        if (said?.location !== undefined) assert.match(raw, new RegExp(`\r\nlocation: ${String(said.location).replace(/[.?/]/g, "\\$&")}\r\n`, "i"));
      }
    });
  });
});

test("explain route shows the policy a request meets, and why a refused route answers 503", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bollard-explain-policy-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "ing.yaml"),
    `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: admin
  namespace: d
  annotations:
    nginx.ingress.kubernetes.io/auth-made-up: "on"
    nginx.ingress.kubernetes.io/ssl-redirect: "false"
spec:
  ingressClassName: nginx
  rules:
    - host: admin.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`,
  );
  // ingress-nginx's class, served by name as during a switch-over
  const { code, stdout, stderr } = await explain(["-f", dir, "--watch-ingress-class", "nginx", "--url", "http://admin.test/x"]);
  assert.equal(code, 0, stderr);
  const answer = JSON.parse(stdout) as { status: number; reason: string; policy: { refuse: { status: number }; redirect: { sslRedirect: boolean } } };
  assert.equal(answer.status, 503);
  assert.match(answer.reason, /auth-made-up/);
  assert.equal(answer.policy.refuse.status, 503);
  assert.equal(answer.policy.redirect.sslRedirect, false);
  // without the class flag the Ingress is not ours
  const notOurs = JSON.parse((await explain(["-f", dir, "--url", "http://admin.test/x"])).stdout) as { status: number };
  assert.equal(notOurs.status, 404);
});

test("explain route: an HTTPS request to an ssl-passthrough host says where its TLS goes and what refuses it; the default-backend is named", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bollard-explain-passthrough-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ingress = (name: string, host: string, annotations: Record<string, string>) => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${name}
  namespace: d
  annotations: ${JSON.stringify(annotations)}
spec:
  ingressClassName: nginx
  rules:
    - host: ${host}
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 443}}}}
---
`;
  const P = "nginx.ingress.kubernetes.io";
  writeFileSync(
    join(dir, "ing.yaml"),
    ingress("pass", "pass.test", { [`${P}/ssl-passthrough`]: "true", [`${P}/allowlist-source-range`]: "10.0.0.0/8" }) +
      ingress("locked", "locked.test", { [`${P}/ssl-passthrough`]: "true", [`${P}/auth-url`]: "http://auth.d.svc/check" }) +
      ingress("errors", "errors.test", { [`${P}/custom-http-errors`]: "404", [`${P}/default-backend`]: "web" }),
  );
  const { code, stdout, stderr } = await explain(["-f", dir, "--watch-ingress-class", "nginx", "--url", "https://pass.test/x", "--url", "http://pass.test/x", "--url", "https://locked.test/", "--url", "http://errors.test/"]);
  assert.equal(code, 0, stderr);
  const [pass, plain, locked, errors] = stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    { ...pass },
    { status: null, match: true, passthrough: true, namespace: "d", ingress: "pass", service: "web", port: 443, endpoints: [], sourceRanges: { allow: ["10.0.0.0/8"], deny: [], checkedOn: "the connection's peer address" } },
  );
  assert.equal(plain?.passthrough, undefined, "plain HTTP is routed as usual");
  assert.equal(plain?.ingress, "pass");
  assert.match(String(locked?.refused), /authentication/);
  assert.ok(errors, "one answer per --url");
  assert.equal((errors.errorBackend as { service: string }).service, "web");
  assert.deepEqual((errors.policy as { errors: unknown }).errors, { codes: [404], defaultBackend: "web" });
});
