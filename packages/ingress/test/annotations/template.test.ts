// Templates: which nginx variables an annotation value may name, and the parts each becomes (the data plane's
// policy/template.rs reads the same parts; its tests give them values).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isTemplateError, parseTemplate, templateText } from "../../src/annotations/template.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";

describe("template parts", () => {
  const valid: [string, unknown][] = [
    ["$http_x_user_id", [{ header: "x-user-id" }]],
    [`\${http_x_user_id}`, [{ header: "x-user-id" }]],
    ["$HTTP_X_User_Id", [{ header: "x-user-id" }]],
    ["$http_authorization", [{ header: "authorization" }]],
    ["$http_cookie", [{ header: "cookie" }]],
    // the Host header as sent stays the variable it was (HTTP/2's :authority included)
    ["$http_host", [{ variable: "http_host" }]],
    ["$cookie_session", [{ cookie: "session" }]],
    ["$cookie_Session_ID2", [{ cookie: "session_id2" }]],
    ["$arg_WOPISrc", [{ arg: "wopisrc" }]],
    ["$arg_id", [{ arg: "id" }]],
    ["$Host", [{ variable: "host" }]],
    ["https://auth/check?uri=$request_uri&user=$http_x_user", [{ text: "https://auth/check?uri=" }, { variable: "request_uri" }, { text: "&user=" }, { header: "x-user" }]],
    // a name ends at the first byte that is not a letter, digit or "_" (nginx's rule)
    ["$cookie_a-b", [{ cookie: "a" }, { text: "-b" }]],
    [`\${arg_id}x`, [{ arg: "id" }, { text: "x" }]],
    ["$http_x.$cookie_y", [{ header: "x" }, { text: "." }, { cookie: "y" }]],
  ];
  for (const [value, parts] of valid) {
    test(`${value} is read`, () => assert.deepEqual(parseTemplate(value), parts));
  }
  const invalid: [string, RegExp][] = [
    ["$http_", /\$http_ names no request header \(write \$http_NAME\)/],
    ["$cookie_", /\$cookie_ names no cookie/],
    [`\${arg_}`, /\$arg_ names no query argument/],
    [`\${http_x-user}`, /"\$\{http_x-user\}" is not a variable name/],
    [`\${cookie_a b}`, /is not a variable name/],
    ["$sent_http_x", /\$sent_http_x is not one of the supported variables \(.*\$http_NAME, \$cookie_NAME, \$arg_NAME\)/],
    ["$binary_remote_addr", /\$binary_remote_addr is not one of/],
    ["$proxy_add_x_forwarded_for", /is not one of/],
    ["$request_body", /is not one of/],
    [`\${http_x`, /is not closed/],
  ];
  for (const [value, error] of invalid) {
    test(`${value} is refused`, () => {
      const t = parseTemplate(value);
      assert.ok(isTemplateError(t), value);
      assert.match(t.error, error);
    });
  }
  test("written back, each reads the same again", () => {
    for (const value of ["a$http_x_user_id.b", `$cookie_s\${arg_id}c`, "$arg_a&$http_b_c", `\${host}x`]) {
      const t = parseTemplate(value);
      assert.ok(!isTemplateError(t));
      assert.deepEqual(parseTemplate(templateText(t)), t, value);
    }
    assert.equal(templateText([{ header: "x-user-id" }, { text: "z" }]), `\${http_x_user_id}z`);
  });
});

describe("the families in the annotations that take templates", () => {
  const cases: { annotations: Record<string, string>; verdict: string; path: (p: Record<string, unknown>) => unknown; parts: unknown }[] = [
    {
      annotations: { "upstream-hash-by": "$http_x_user_id" },
      verdict: "supported",
      path: (p) => (p.balance as { hashBy: unknown }).hashBy,
      parts: [{ header: "x-user-id" }],
    },
    {
      annotations: { "auth-url": "http://auth.svc/check?uri=$request_uri&user=$http_x_user" },
      verdict: "supported",
      path: (p) => (p.externalAuth as { url: unknown }).url,
      parts: [{ text: "http://auth.svc/check?uri=" }, { variable: "request_uri" }, { text: "&user=" }, { header: "x-user" }],
    },
    { annotations: { "upstream-vhost": "$http_x_target_host" }, verdict: "supported", path: (p) => (p.rewrite as { upstreamVhost: unknown }).upstreamVhost, parts: [{ header: "x-target-host" }] },
    {
      annotations: { "permanent-redirect": "https://x.test/go?to=$arg_next&c=$cookie_lang" },
      verdict: "supported",
      path: (p) => (p.redirect as { to: { url: unknown } }).to.url,
      parts: [{ text: "https://x.test/go?to=" }, { arg: "next" }, { text: "&c=" }, { cookie: "lang" }],
    },
  ];
  for (const c of cases) {
    const [name, value] = Object.entries(c.annotations)[0] as [string, string];
    test(`${name}: ${value}`, () => {
      const { policy, findings } = policyOf({ [`${P}/${name}`]: value });
      assert.equal(findings.find((f) => f.name === name)?.verdict, c.verdict);
      assert.deepEqual(c.path(policy as unknown as Record<string, unknown>), c.parts);
    });
  }
  test("auth-url: the host stays literal (a header never chooses where the credentials go)", () => {
    const { policy, findings } = policyOf({ [`${P}/auth-url`]: "http://$http_x_auth_host/check" }, { fixedHosts: true });
    assert.equal(findings.find((f) => f.name === "auth-url")?.verdict, "invalid");
    assert.equal(policy.refuse?.status, 503);
  });
});
