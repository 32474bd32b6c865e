// The annotation framework: what each annotation came to, and failing closed where security is at stake.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_POLICY } from "../../src/annotations/policy.ts";
import { compileRoutes } from "../../src/router/compile.ts";
import { policyOf } from "./cases.ts";
import { snapshotOf } from "../helpers/backends.ts";

const P = "nginx.ingress.kubernetes.io";

describe("reading annotations", () => {
  test("no annotations: the default policy, no findings", () => {
    const { policy, findings } = policyOf({});
    assert.equal(policy, DEFAULT_POLICY);
    assert.deepEqual(findings, []);
  });

  test("other prefixes are not ours; a snippet is reported unsupported and never read", () => {
    const { policy, findings } = policyOf({ "example.com/rewrite-target": "/", [`${P}/configuration-snippet`]: "return 200;" });
    assert.equal(policy.refuse, null);
    assert.deepEqual(
      findings.map((f) => [f.name, f.verdict, f.refuses]),
      [["configuration-snippet", "unsupported", false]],
    );
    assert.match(findings[0]?.message ?? "", /never evaluates user text/);
  });

  test("an unsupported security annotation refuses: the route answers 503 rather than serve unprotected", () => {
    const { policy, findings } = policyOf({ [`${P}/auth-made-up`]: "x", [`${P}/strange`]: "y" });
    assert.equal(policy.refuse?.status, 503);
    assert.match(policy.refuse?.reason ?? "", /auth-made-up/);
    assert.deepEqual(
      findings.map((f) => [f.name, f.verdict, f.refuses]),
      [
        ["auth-made-up", "unsupported", true],
        ["strange", "unsupported", false],
      ],
    );
  });

  test("an invalid boolean is reported with the value used instead", () => {
    const { policy, findings } = policyOf({ [`${P}/ssl-redirect`]: "yes" });
    assert.equal(policy.redirect.sslRedirect, true);
    assert.equal(findings[0]?.verdict, "invalid");
    assert.match(findings[0]?.message ?? "", /"yes" is neither "true" nor "false"; true is used/);
  });

  test("--annotations-prefix chooses the prefix read", () => {
    const { policy } = policyOf({ "custom.io/ssl-redirect": "false", [`${P}/ssl-redirect`]: "true" }, { prefix: "custom.io" });
    assert.equal(policy.redirect.sslRedirect, false);
  });
});

describe("annotations in the route table", () => {
  const table = (annotations: Record<string, string>) =>
    compileRoutes(snapshotOf([{ name: "web", annotations, routes: [{ host: "foo.test", path: "/", service: "a", ports: [8080] }] }]));

  test("findings become Warning diagnostics naming the annotation; the policy reaches the route", () => {
    const t = table({ [`${P}/server-snippet`]: "x", [`${P}/auth-made-up`]: "y" });
    assert.deepEqual(
      t.diagnostics.map((d) => [d.reason, d.field]),
      [
        ["UnsupportedAnnotation", `metadata.annotations['${P}/auth-made-up']`],
        ["UnsupportedAnnotation", `metadata.annotations['${P}/server-snippet']`],
      ],
    );
    assert.match(t.diagnostics[0]?.message ?? "", /answer 503 until this is fixed/);
    const route = t.exactHosts.get("foo.test")?.prefix.route;
    assert.equal(route?.policy.refuse?.status, 503);
    assert.equal(t.annotations.get("default/web")?.length, 2);
  });

  test("Bollard's own bollard.dev/ssl-redirect still opts out; the ingress-nginx spelling wins when both are set", () => {
    const withTls = (annotations: Record<string, string>) =>
      compileRoutes(
        snapshotOf([{ name: "web", annotations, tls: [{ hosts: ["foo.test"], secretName: "none" }], routes: [{ host: "foo.test", path: "/", service: "a", ports: [8080] }] }]),
      ).exactHosts.get("foo.test")?.prefix.route?.sslRedirect;
    assert.equal(withTls({}), true);
    assert.equal(withTls({ "bollard.dev/ssl-redirect": "false" }), false);
    assert.equal(withTls({ "bollard.dev/ssl-redirect": "false", [`${P}/ssl-redirect`]: "true" }), true);
    assert.equal(withTls({ [`${P}/ssl-redirect`]: "false", [`${P}/force-ssl-redirect`]: "true" }), true);
  });

  test("an unchanged Ingress keeps the same policy object across compiles (routes stay the same objects)", () => {
    const snap = snapshotOf([{ name: "web", annotations: { [`${P}/ssl-redirect`]: "false" }, routes: [{ host: "foo.test", path: "/", service: "a", ports: [8080] }] }]);
    const a = compileRoutes(snap).exactHosts.get("foo.test")?.prefix.route;
    const b = compileRoutes(snap).exactHosts.get("foo.test")?.prefix.route;
    assert.ok(a !== undefined && a === b);
  });
});
