// custom-http-errors and default-backend: annotations in, policy and findings out; the route's error backend.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_GLOBALS } from "../../src/annotations/globals.ts";
import { compileRoutes } from "../../src/router/compile.ts";
import { snapshotOf } from "../helpers/backends.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";

describe("custom error annotations", () => {
  test("codes (sorted, deduplicated) and the default backend", () => {
    const { policy, findings } = policyOf({ [`${P}/custom-http-errors`]: "503, 404,404", [`${P}/default-backend`]: "errors" });
    assert.deepEqual(policy.errors, { codes: [404, 503], defaultBackend: "errors" });
    assert.deepEqual(
      findings.map((f) => f.verdict),
      ["supported", "supported"],
    );
  });

  test("the ConfigMap's custom-http-errors is the default; codes without default-backend are said to do nothing", () => {
    const globals = { ...DEFAULT_GLOBALS, customHttpErrors: [502] };
    assert.deepEqual(policyOf({ [`${P}/default-backend`]: "errors" }, { globals }).policy.errors, { codes: [502], defaultBackend: "errors" });
    const { findings } = policyOf({ [`${P}/custom-http-errors`]: "404" });
    assert.equal(findings[0]?.verdict, "different");
  });

  for (const [value, name] of [
    ["404,200", "custom-http-errors"],
    ["abc", "custom-http-errors"],
    ["Errors_Svc", "default-backend"],
    ["other/errors", "default-backend"],
  ] as const) {
    test(`invalid ${name}: ${value} (not a security annotation: reported, nothing refused)`, () => {
      const { policy, findings } = policyOf({ [`${P}/${name}`]: value });
      assert.equal(findings[0]?.verdict, "invalid");
      assert.equal(policy.refuse, null);
    });
  }

  test("the route gets the default-backend Service as its error backend (first port); a missing one is reported", () => {
    const table = compileRoutes(
      snapshotOf([
        { name: "web", annotations: { [`${P}/default-backend`]: "errors" }, routes: [{ host: "a.test", path: "/", service: "app", ports: [8080] }] },
        { name: "pages", routes: [{ host: "b.test", path: "/", service: "errors", ports: [9090] }] },
        { name: "lost", annotations: { [`${P}/default-backend`]: "gone" }, routes: [{ host: "c.test", path: "/", service: "app", ports: [8080] }] },
      ]),
    );
    const route = table.exactHosts.get("a.test")?.prefix.route;
    assert.equal(route?.errorBackend?.service, "errors");
    assert.deepEqual(route?.errorBackend?.endpoints, [{ host: "127.0.0.1", port: 9090 }]);
    assert.equal(table.exactHosts.get("b.test")?.prefix.route?.errorBackend, null);
    const lost = table.diagnostics.find((d) => d.ingress.name === "lost");
    assert.equal(lost?.reason, "ServiceNotFound");
  });
});
