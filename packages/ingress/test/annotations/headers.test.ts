// custom-headers (a ConfigMap's keys and values, validated) and HSTS from the globals.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_GLOBALS } from "../../src/annotations/globals.ts";
import { DEFAULT_POLICY } from "../../src/annotations/policy.ts";
import type { ConfigMap } from "../../src/model/objects.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";
const configMap = (name: string, data: Record<string, string>, namespace = "default"): ConfigMap => ({ metadata: { name, namespace }, data });
const configMaps = [
  configMap("hdrs", { "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff" }),
  configMap("shared", { "X-Team": "edge team" }, "infra"),
  configMap("bad-name", { "X Bad": "v" }),
  configMap("bad-value", { "X-Ok": "line\r\nInjected: 1" }),
  configMap("framing", { "Content-Length": "0" }),
];

describe("custom-headers", () => {
  const cases: { name: string; value: string; response: [string, string][]; invalid?: RegExp }[] = [
    { name: "a ConfigMap in the Ingress's namespace, sorted by name", value: "hdrs", response: [["X-Content-Type-Options", "nosniff"], ["X-Frame-Options", "DENY"]] },
    { name: "namespace/name", value: "infra/shared", response: [["X-Team", "edge team"]] },
    { name: "a missing ConfigMap is invalid, not a refusal", value: "nope", response: [], invalid: /ConfigMap default\/nope not found/ },
    { name: "a key that is not a header name", value: "bad-name", response: [], invalid: /"X Bad" is not a header name/ },
    { name: "a value with a line break", value: "bad-value", response: [], invalid: /the value of X-Ok is not visible ASCII/ },
    { name: "a framing header", value: "framing", response: [], invalid: /"Content-Length" is not a header name a response may be given/ },
    { name: "not an object name", value: "a/b/c", response: [], invalid: /names a ConfigMap/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { policy, findings } = policyOf({ [`${P}/custom-headers`]: c.value }, { configMaps });
      assert.deepEqual(policy.headers?.response ?? [], c.response);
      assert.equal(policy.refuse, null);
      if (c.invalid === undefined) assert.deepEqual(findings.map((f) => f.verdict), ["supported"]);
      else {
        assert.equal(findings[0]?.verdict, "invalid");
        assert.match(findings[0]?.message ?? "", c.invalid);
      }
    });
  }
});

describe("HSTS from the globals", () => {
  test("the default globals: every policy sends the default HSTS (and no annotations is still the default policy)", () => {
    assert.equal(policyOf({}).policy, DEFAULT_POLICY);
    assert.equal(DEFAULT_POLICY.headers?.hsts, "max-age=31536000; includeSubDomains");
  });

  test("hsts off in the ConfigMap: no headers at all without custom-headers", () => {
    const globals = { ...DEFAULT_GLOBALS, hsts: null };
    assert.equal(policyOf({}, { globals }).policy.headers, null);
    assert.deepEqual(policyOf({ [`${P}/custom-headers`]: "infra/shared" }, { globals, configMaps }).policy.headers, { response: [["X-Team", "edge team"]], hsts: null });
  });

  test("another HSTS value reaches every policy", () => {
    const globals = { ...DEFAULT_GLOBALS, hsts: "max-age=60; preload" };
    assert.deepEqual(policyOf({}, { globals }).policy.headers, { response: [], hsts: "max-age=60; preload" });
  });
});
