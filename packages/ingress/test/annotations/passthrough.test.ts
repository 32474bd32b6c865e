// ssl-passthrough: read into the policy, and compiled into the table of passthrough hosts (host → the backend of
// the Ingress's "/" there), with the conflicts between Ingresses said as Warnings.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { matchPassthrough } from "../../src/router/match.ts";
import type { RouteTable } from "../../src/router/table.ts";
import { type IngressSpec, tableOf } from "../helpers/backends.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";
const a = (annotations: Record<string, string>) => Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v]));
const pass = a({ "ssl-passthrough": "true" });

describe("ssl-passthrough: reading", () => {
  const cases: { name: string; annotations: Record<string, string>; sslPassthrough: boolean; verdicts: Record<string, [string, RegExp?]> }[] = [
    { name: "absent", annotations: {}, sslPassthrough: false, verdicts: {} },
    { name: "true: served, the difference said", annotations: { "ssl-passthrough": "true" }, sslPassthrough: true, verdicts: { "ssl-passthrough": ["different", /no controller flag.*plain-HTTP requests only/] } },
    { name: "false", annotations: { "ssl-passthrough": "false" }, sslPassthrough: false, verdicts: { "ssl-passthrough": ["supported"] } },
    { name: "not a boolean: invalid, not passed through", annotations: { "ssl-passthrough": "yes" }, sslPassthrough: false, verdicts: { "ssl-passthrough": ["invalid", /"yes" is neither "true" nor "false"/] } },
    { name: "padded value", annotations: { "ssl-passthrough": " true " }, sslPassthrough: true, verdicts: { "ssl-passthrough": ["different"] } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { policy, findings } = policyOf(a(c.annotations));
      assert.equal(policy.sslPassthrough, c.sslPassthrough);
      assert.equal(findings.length, Object.keys(c.verdicts).length);
      for (const [name, [verdict, message]] of Object.entries(c.verdicts)) {
        const f = findings.find((x) => x.name === name);
        assert.equal(f?.verdict, verdict, name);
        if (message) assert.match(f?.message ?? "", message);
      }
    });
  }
});

const ports = [8443];
const byReason = (t: RouteTable, reason: string) => t.diagnostics.filter((d) => d.reason === reason).map((d) => `${d.ingress.name} ${d.field}: ${d.message}`);
const passed = (t: RouteTable) => Object.fromEntries([...t.passthrough].map(([host, p]) => [host, `${p.ingress.name} ${p.backend.service}`]));

describe("ssl-passthrough: the compiled table", () => {
  const cases: { name: string; ingresses: IngressSpec[]; passthrough: Record<string, string>; warnings?: Record<string, RegExp[]> }[] = [
    {
      name: "each host's / backend; other paths are not what connections go to",
      ingresses: [
        {
          name: "a",
          annotations: pass,
          routes: [
            { host: "pass.test", path: "/api", service: "api", ports },
            { host: "pass.test", service: "tls", ports },
            { host: "*.wild.test", service: "wild", ports },
          ],
        },
      ],
      passthrough: { "pass.test": "a tls", "*.wild.test": "a wild" },
    },
    {
      name: "the Ingress's defaultBackend serves the root of a host without a / path",
      ingresses: [{ name: "a", annotations: pass, defaultBackend: { service: "fallback", ports }, routes: [{ host: "pass.test", path: "/x", service: "x", ports }] }],
      passthrough: { "pass.test": "a fallback" },
    },
    {
      name: "an Exact / counts as the root",
      ingresses: [{ name: "a", annotations: pass, routes: [{ host: "pass.test", path: "/", pathType: "Exact", service: "tls", ports }] }],
      passthrough: { "pass.test": "a tls" },
    },
    {
      name: "without a / of its own: not passed through, said",
      ingresses: [
        { name: "a", annotations: pass, routes: [{ host: "pass.test", path: "/api", service: "api", ports }] },
        { name: "b", annotations: pass, routes: [{ host: "other.test", path: "/api", service: "api", ports }] },
        { name: "c", routes: [{ host: "other.test", service: "web", ports }] },
      ],
      passthrough: {},
      warnings: {
        PassthroughWithoutRoot: [/^a .*ssl-passthrough'\]: .*on pass\.test, and there is none; TLS connections to pass\.test are terminated as usual/, /^b .*on other\.test, and Ingress default\/c serves "\/" there/],
      },
    },
    {
      name: "host-less rules have no server name to pass through by",
      ingresses: [{ name: "a", annotations: pass, routes: [{ service: "tls", ports }] }],
      passthrough: {},
      warnings: { PassthroughWithoutRoot: [/^a .*needs a rule with a host/] },
    },
    {
      name: "two Ingresses passing one host through: the oldest has it",
      ingresses: [
        { name: "a", annotations: pass, routes: [{ host: "pass.test", service: "tls", ports }] },
        { name: "b", annotations: pass, routes: [{ host: "pass.test", path: "/b", service: "b", ports }] },
      ],
      passthrough: { "pass.test": "a tls" },
      warnings: { PassthroughConflict: [/^b .*already passed through to the backend of Ingress default\/a/] },
    },
    {
      name: "other Ingresses serving a passthrough host are told what they lose",
      ingresses: [
        { name: "a", annotations: pass, routes: [{ host: "pass.test", service: "tls", ports }] },
        { name: "b", tls: [{ hosts: ["pass.test"], secretName: "missing" }], routes: [{ host: "pass.test", path: "/web", service: "web", ports }] },
        { name: "c", routes: [{ host: "plain.test", service: "web", ports }] },
      ],
      passthrough: { "pass.test": "a tls" },
      warnings: {
        PassthroughConflict: [/^b spec\.tls: .*certificate is not served for pass\.test/, /^b spec\.rules: .*rules for pass\.test serve plain HTTP only/],
      },
    },
    {
      name: "a canary Ingress asking for passthrough passes nothing through",
      ingresses: [
        { name: "a", routes: [{ host: "pass.test", service: "web", ports }] },
        { name: "b", annotations: { ...pass, ...a({ canary: "true", "canary-weight": "10" }) }, routes: [{ host: "pass.test", service: "tls", ports }] },
      ],
      passthrough: {},
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const t = tableOf(c.ingresses);
      assert.deepEqual(passed(t), c.passthrough);
      for (const reason of ["PassthroughConflict", "PassthroughWithoutRoot", "PassthroughUnprotected"]) {
        const got = byReason(t, reason);
        const want = c.warnings?.[reason] ?? [];
        assert.equal(got.length, want.length, `${reason}: ${got.join(" | ")}`);
        for (const [i, re] of want.entries()) assert.match(got[i] ?? "", re);
      }
    });
  }

  test("matchPassthrough: exact host, else one wildcard label", () => {
    const t = tableOf([{ name: "a", annotations: pass, routes: [{ host: "pass.test", service: "tls", ports }, { host: "*.wild.test", service: "wild", ports }] }]);
    assert.equal(matchPassthrough(t, "PASS.test.")?.backend.service, "tls");
    assert.equal(matchPassthrough(t, "a.wild.test")?.backend.service, "wild");
    for (const other of ["wild.test", "a.b.wild.test", "other.test", "", undefined]) assert.equal(matchPassthrough(t, other), null, String(other));
  });

  test("the Ingress's other annotations act on plain HTTP only: said, and loudly for security ones", () => {
    const annotations = { ...pass, ...a({ "proxy-read-timeout": "30", "whitelist-source-range": "10.0.0.0/8", "limit-rps": "x" }) };
    const t = tableOf([{ name: "a", annotations, routes: [{ host: "pass.test", service: "tls", ports }] }]);
    const findings = Object.fromEntries((t.annotations.get("default/a") ?? []).map((f) => [f.name, f]));
    assert.equal(findings["proxy-read-timeout"]?.verdict, "different");
    assert.match(findings["proxy-read-timeout"]?.message ?? "", /plain-HTTP requests only/);
    assert.equal(findings["whitelist-source-range"]?.verdict, "different");
    assert.equal(findings["limit-rps"]?.verdict, "invalid"); // an invalid value stays invalid
    assert.equal(findings["ssl-passthrough"]?.verdict, "different");
    assert.deepEqual(byReason(t, "PassthroughUnprotected"), [
      "a metadata.annotations['nginx.ingress.kubernetes.io/whitelist-source-range']: nginx.ingress.kubernetes.io/whitelist-source-range is checked on the TLS connection's peer address (no X-Forwarded-For can be read from an unread stream): put no proxy in front, or list its address; for plain-HTTP requests it applies as usual",
    ]);
  });
});
