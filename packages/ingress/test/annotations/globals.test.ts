// The ingress-nginx controller ConfigMap (`--configmap`): keys honoured, keys honoured differently, keys refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_GLOBALS, parseNginxSize, readGlobals } from "../../src/annotations/globals.ts";

test("no ConfigMap: the defaults", () => {
  assert.deepEqual(readGlobals(undefined), { globals: DEFAULT_GLOBALS, findings: [] });
});

test("the most used keys set the defaults the annotation readers start from", () => {
  const { globals, findings } = readGlobals({
    "proxy-body-size": "8m",
    "ssl-redirect": "false",
    "force-ssl-redirect": "true",
    "proxy-connect-timeout": "3",
    "proxy-read-timeout": "120",
    "proxy-send-timeout": "30",
    "cors-allow-origin": "https://app.example.com",
    "cors-allow-credentials": "false",
    "cors-max-age": "600",
    "custom-http-errors": "404,503",
    "hsts-max-age": "600",
    "hsts-preload": "true",
    "hsts-include-subdomains": "false",
    "global-auth-url": "http://auth.sso.svc/check",
    "global-auth-response-headers": "X-User, X-Email",
    "limit-req-status-code": "429",
  });
  assert.deepEqual(findings, []);
  assert.equal(globals.proxyBodySize, 8 * 1024 * 1024);
  assert.equal(globals.sslRedirect, false);
  assert.equal(globals.forceSslRedirect, true);
  assert.deepEqual([globals.proxyConnectTimeoutMs, globals.proxyReadTimeoutMs, globals.proxySendTimeoutMs], [3000, 120_000, 30_000]);
  assert.deepEqual(globals.cors, { ...DEFAULT_GLOBALS.cors, allowOrigin: "https://app.example.com", allowCredentials: false, maxAge: 600 });
  assert.deepEqual(globals.customHttpErrors, [404, 503]);
  assert.equal(globals.hsts, "max-age=600; preload");
  assert.equal(globals.globalAuthUrl, "http://auth.sso.svc/check");
  assert.deepEqual(globals.globalAuthResponseHeaders, ["X-User", "X-Email"]);
  assert.equal(globals.limitReqStatusCode, 429);
  assert.equal(readGlobals({ hsts: "false" }).globals.hsts, null);
});

test("invalid values keep the default and say so; other keys are named, never silently dropped", () => {
  const { globals, findings } = readGlobals({
    "proxy-body-size": "lots",
    "ssl-redirect": "yes",
    "proxy-read-timeout": "60s",
    "custom-http-errors": "404,200",
    "allow-snippet-annotations": "true",
    "use-forwarded-headers": "true",
    "forwarded-for-header": "X-Real-Client",
    "log-format-upstream": "$remote_addr",
    "worker-processes": "4",
  });
  assert.equal(globals.proxyBodySize, null);
  assert.equal(globals.sslRedirect, true);
  assert.equal(globals.proxyReadTimeoutMs, null);
  assert.deepEqual(globals.customHttpErrors, []);
  assert.deepEqual(
    findings.map((f) => [f.key, f.verdict]),
    [
      ["allow-snippet-annotations", "different"],
      ["custom-http-errors", "invalid"],
      ["forwarded-for-header", "unsupported"],
      ["log-format-upstream", "unsupported"],
      ["proxy-body-size", "invalid"],
      ["proxy-read-timeout", "invalid"],
      ["ssl-redirect", "invalid"],
      ["use-forwarded-headers", "different"],
      ["worker-processes", "unsupported"],
    ],
  );
  assert.match(findings.find((f) => f.key === "use-forwarded-headers")?.message ?? "", /--trusted-proxies/);
});

test("nginx sizes", () => {
  const cases: [string, number | undefined][] = [
    ["0", 0],
    ["1048576", 1048576],
    ["512k", 512 * 1024],
    ["8M", 8 * 1024 * 1024],
    ["1g", 1024 ** 3],
    ["1.5m", undefined],
    ["-1", undefined],
    ["m", undefined],
  ];
  for (const [text, bytes] of cases) assert.equal(parseNginxSize(text), bytes, text);
});
