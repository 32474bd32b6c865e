// Which backend and which endpoint serve: canary, affinity, upstream-hash-by and service-upstream read into the
// policy, and canaries attached to the main Ingress's routes by the compiler.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Route, RouteTable } from "../../src/router/table.ts";
import { compileRoutes } from "../../src/router/compile.ts";
import { type IngressSpec, snapshotOf } from "../helpers/backends.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";
const a = (annotations: Record<string, string>) => Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v]));
const verdicts = (findings: readonly { name: string; verdict: string }[]) => Object.fromEntries(findings.map((f) => [f.name, f.verdict]));

describe("affinity", () => {
  const cases: { name: string; annotations: Record<string, string>; affinity: Record<string, unknown> | null; verdicts: Record<string, string> }[] = [
    {
      name: "cookie with the defaults",
      annotations: { affinity: "cookie", "affinity-mode": "persistent" },
      affinity: { name: "INGRESSCOOKIE", mode: "persistent", canaryBehavior: "sticky", secure: false, path: null, domain: null, sameSite: null, conditionalSameSiteNone: false, maxAge: null, expires: null, changeOnFailure: false },
      verdicts: { affinity: "supported", "affinity-mode": "supported" },
    },
    {
      name: "every cookie field",
      annotations: {
        affinity: "cookie",
        "affinity-mode": "persistent",
        "affinity-canary-behavior": "legacy",
        "session-cookie-name": "route",
        "session-cookie-secure": "true",
        "session-cookie-path": "/app",
        "session-cookie-domain": "foo.test",
        "session-cookie-samesite": "none",
        "session-cookie-conditional-samesite-none": "true",
        "session-cookie-max-age": "172800",
        "session-cookie-expires": "3600",
        "session-cookie-change-on-failure": "true",
      },
      affinity: { name: "route", mode: "persistent", canaryBehavior: "legacy", secure: true, path: "/app", domain: "foo.test", sameSite: "None", conditionalSameSiteNone: true, maxAge: 172800, expires: 3600, changeOnFailure: true },
      verdicts: {},
    },
    {
      name: "balanced (the default) is reported as served like persistent",
      annotations: { affinity: "cookie" },
      affinity: { mode: "balanced" },
      verdicts: { affinity: "different" },
    },
    {
      name: "invalid values fall back and are reported",
      annotations: { affinity: "cookie", "affinity-mode": "persistent", "session-cookie-name": "a b", "session-cookie-path": "app", "session-cookie-domain": "foo;bar", "session-cookie-samesite": "Sometimes", "session-cookie-max-age": "-1", "affinity-canary-behavior": "maybe" },
      affinity: { name: "INGRESSCOOKIE", path: null, domain: null, sameSite: null, maxAge: null, canaryBehavior: "sticky" },
      verdicts: { "session-cookie-name": "invalid", "session-cookie-path": "invalid", "session-cookie-domain": "invalid", "session-cookie-samesite": "invalid", "session-cookie-max-age": "invalid", "affinity-canary-behavior": "invalid" },
    },
    {
      name: "an affinity other than cookie is invalid; its cookie settings have no effect",
      annotations: { affinity: "ip", "session-cookie-name": "x" },
      affinity: null,
      verdicts: { affinity: "invalid", "session-cookie-name": "different" },
    },
    {
      name: "cookie settings without affinity have no effect (read, not unsupported)",
      annotations: { "session-cookie-name": "x", "session-cookie-max-age": "5" },
      affinity: null,
      verdicts: { "session-cookie-name": "different", "session-cookie-max-age": "different" },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { policy, findings } = policyOf(a(c.annotations));
      if (c.affinity === null) assert.equal(policy.balance?.affinity ?? null, null);
      else {
        const got = policy.balance?.affinity;
        assert.ok(got, "affinity is on");
        for (const [k, v] of Object.entries(c.affinity)) assert.deepEqual((got as unknown as Record<string, unknown>)[k], v, k);
      }
      const got = verdicts(findings);
      for (const [k, v] of Object.entries(c.verdicts)) assert.equal(got[k], v, k);
    });
  }
});

describe("upstream-hash-by", () => {
  const cases: { value: string; template: unknown; verdict: string }[] = [
    { value: "$request_uri", template: [{ variable: "request_uri" }], verdict: "supported" },
    { value: "$host$uri", template: [{ variable: "host" }, { variable: "uri" }], verdict: "supported" },
    { value: "$binary_remote_addr", template: [{ variable: "remote_addr" }], verdict: "different" },
    { value: "$http_x_user_id", template: [{ header: "x-user-id" }], verdict: "supported" },
    { value: "$cookie_session", template: [{ cookie: "session" }], verdict: "supported" },
    { value: "$arg_WOPISrc", template: [{ arg: "wopisrc" }], verdict: "supported" },
    { value: `\${http_x_a}-$remote_addr`, template: [{ header: "x-a" }, { text: "-" }, { variable: "remote_addr" }], verdict: "supported" },
    { value: "$BINARY_REMOTE_ADDR", template: [{ variable: "remote_addr" }], verdict: "different" },
    { value: "$http_", template: null, verdict: "invalid" },
    { value: "$sent_http_x", template: null, verdict: "invalid" },
    { value: "constant", template: null, verdict: "invalid" },
  ];
  for (const c of cases) {
    test(c.value, () => {
      const { policy, findings } = policyOf(a({ "upstream-hash-by": c.value }));
      assert.deepEqual(policy.balance?.hashBy ?? null, c.template);
      assert.equal(verdicts(findings)["upstream-hash-by"], c.verdict);
    });
  }
  test("subsets are refused out loud", () => {
    const { findings } = policyOf(a({ "upstream-hash-by": "$request_uri", "upstream-hash-by-subset": "true", "upstream-hash-by-subset-size": "3" }));
    assert.deepEqual(verdicts(findings), { "upstream-hash-by": "supported", "upstream-hash-by-subset": "invalid", "upstream-hash-by-subset-size": "invalid" });
  });
});

describe("canary rule", () => {
  const rule = (annotations: Record<string, string>) => policyOf(a({ canary: "true", ...annotations }));
  test("header, value, cookie and weight", () => {
    const { policy, findings } = rule({ "canary-by-header": "X-Canary", "canary-by-header-value": "yes", "canary-by-cookie": "c", "canary-weight": "30", "canary-weight-total": "1000" });
    assert.deepEqual(policy.canary, { header: "X-Canary", headerValue: "yes", headerPattern: null, cookie: "c", weight: 30, weightTotal: 1000 });
    assert.ok(findings.every((f) => f.verdict === "supported"));
  });
  test("a value takes precedence over a pattern", () => {
    const { policy, findings } = rule({ "canary-by-header": "x", "canary-by-header-value": "yes", "canary-by-header-pattern": "^y" });
    assert.equal(policy.canary?.headerPattern, null);
    assert.equal(verdicts(findings)["canary-by-header-pattern"], "different");
  });
  const invalid: [string, Record<string, string>][] = [
    ["canary-by-header-pattern", { "canary-by-header": "x", "canary-by-header-pattern": "(unclosed" }],
    ["canary-by-header-pattern", { "canary-by-header": "x", "canary-by-header-pattern": "^(?!admin)" }],
    ["canary-by-header-pattern", { "canary-by-header": "x", "canary-by-header-pattern": "(a)\\1" }],
    ["canary-weight", { "canary-weight": "101" }],
    ["canary-weight", { "canary-weight": "-5" }],
    ["canary-weight-total", { "canary-weight-total": "0" }],
    ["canary-by-header", { "canary-by-header": "bad header" }],
    ["canary", { canary: "yes" }],
  ];
  for (const [name, annotations] of invalid) {
    test(`invalid ${name}: ${JSON.stringify(annotations)}`, () => {
      const { policy, findings } = rule(annotations);
      assert.equal(verdicts(findings)[name], "invalid");
      if (name === "canary-by-header-pattern") assert.equal(policy.canary?.headerPattern, null);
      if (name === "canary-weight") assert.equal(policy.canary?.weight, 0);
      if (name === "canary") assert.equal(policy.canary, null);
    });
  }
  test("canary rules without canary: true have no effect", () => {
    const { policy, findings } = policyOf(a({ "canary-weight": "50" }));
    assert.equal(policy.canary, null);
    assert.equal(verdicts(findings)["canary-weight"], "different");
  });
});

describe("canaries in the route table", () => {
  const main: IngressSpec = { name: "main", routes: [{ host: "foo.test", path: "/", service: "stable", ports: [8080] }] };
  const canary = (name: string, annotations: Record<string, string>, path = "/"): IngressSpec => ({
    name,
    annotations: a({ canary: "true", ...annotations }),
    routes: [{ host: "foo.test", path, service: `${name}-svc`, ports: [9090] }],
  });
  const routeOf = (t: RouteTable, host: string, path: string): Route | null => {
    const rules = t.exactHosts.get(host);
    let node = rules?.prefix ?? null;
    for (const s of path.split("/").filter((x) => x !== "")) node = node?.children.get(s) ?? null;
    return node?.route ?? null;
  };

  test("a canary Ingress claims nothing; its backend joins the main route with its rule and its own balance", () => {
    const t = compileRoutes(snapshotOf([canary("c", { "canary-weight": "20", affinity: "cookie", "proxy-body-size": "1k" }), main]));
    const route = routeOf(t, "foo.test", "/");
    assert.equal(route?.ingress.name, "main");
    assert.equal(route?.backend.service, "stable");
    assert.equal(route?.canaries.length, 1);
    assert.equal(route?.canaries[0]?.backend.service, "c-svc");
    assert.equal(route?.canaries[0]?.rule.weight, 20);
    assert.equal(route?.canaries[0]?.balance?.affinity?.name, "INGRESSCOOKIE");
    assert.deepEqual(
      t.diagnostics.filter((d) => d.reason !== "UnsupportedAnnotation").map((d) => d.reason),
      [],
      "no RouteConflict",
    );
    const findings = t.annotations.get("default/c") ?? [];
    const body = findings.find((f) => f.name === "proxy-body-size");
    assert.equal(body?.verdict, "different");
    assert.match(body?.message ?? "", /no effect on a canary Ingress/);
  });

  test("the same tables again: unchanged routes are the same objects", () => {
    const snapshot = snapshotOf([canary("c", { "canary-weight": "20" }), main]);
    const first = routeOf(compileRoutes(snapshot), "foo.test", "/");
    const second = routeOf(compileRoutes(snapshot), "foo.test", "/");
    assert.equal(first, second);
  });

  test("a canary without a main Ingress serves nothing and is reported", () => {
    const t = compileRoutes(snapshotOf([canary("c", { "canary-weight": "50" }, "/other"), main]));
    assert.equal(routeOf(t, "foo.test", "/other"), null, "the canary's path is not claimed");
    assert.equal(routeOf(t, "foo.test", "/")?.canaries.length, 0);
    const d = t.diagnostics.find((x) => x.reason === "CanaryWithoutMain");
    assert.equal(d?.ingress.name, "c");
    assert.equal(d?.severity, "warning");
    assert.match(d?.message ?? "", /host foo\.test path \/other/);
  });

  test("one canary per route: the oldest keeps it, the other is reported", () => {
    const snapshot = snapshotOf([canary("c1", { "canary-weight": "10" }), canary("c2", { "canary-weight": "90" }), main]);
    snapshot.ingresses.forEach((ing, i) => {
      ing.metadata.creationTimestamp = `2024-01-0${i + 1}T00:00:00Z`;
    });
    const t = compileRoutes(snapshot);
    assert.deepEqual(routeOf(t, "foo.test", "/")?.canaries.map((c) => c.ingress.name), ["c1"]);
    const d = t.diagnostics.find((x) => x.reason === "CanaryConflict");
    assert.equal(d?.ingress.name, "c2");
  });

  test("an invalid pattern leaves the canary's other rules in force", () => {
    const t = compileRoutes(snapshotOf([canary("c", { "canary-by-header": "x", "canary-by-header-pattern": "(?<=a)b", "canary-weight": "5" }), main]));
    const c = routeOf(t, "foo.test", "/")?.canaries[0];
    assert.equal(c?.rule.headerPattern, null);
    assert.equal(c?.rule.weight, 5);
    assert.ok(t.diagnostics.some((d) => d.reason === "InvalidAnnotation" && d.message.includes("canary-by-header-pattern")));
  });
});

describe("service-upstream", () => {
  const table = (spec: Record<string, unknown>) => {
    const snapshot = snapshotOf([{ name: "web", annotations: a({ "service-upstream": "true" }), routes: [{ host: "foo.test", path: "/", service: "app", ports: [8080, 8081] }] }]);
    const svc = snapshot.services[0];
    if (svc?.spec !== undefined) Object.assign(svc.spec, spec);
    return compileRoutes(snapshot);
  };
  const backendOf = (t: RouteTable) => t.exactHosts.get("foo.test")?.prefix.route?.backend;

  test("the ClusterIP and Service port become the only endpoint", () => {
    assert.deepEqual(backendOf(table({ clusterIP: "10.96.0.10" }))?.endpoints, [{ host: "10.96.0.10", port: 80 }]);
  });
  for (const [what, spec] of [
    ["headless", { clusterIP: "None" }],
    ["without a ClusterIP", {}],
  ] as const) {
    test(`a ${what} Service keeps its endpoints, reported invalid`, () => {
      const t = table(spec);
      assert.deepEqual(backendOf(t)?.endpoints.map((e) => e.port), [8080, 8081]);
      assert.ok(t.diagnostics.some((d) => d.reason === "InvalidAnnotation" && d.message.includes("service-upstream")));
    });
  }
});
