// auth-url & co: annotations in, policy and findings out.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_GLOBALS } from "../../src/annotations/globals.ts";
import { templateText } from "../../src/annotations/template.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";
const a = (values: Record<string, string>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [`${P}/${k}`, v]));
const verdicts = (findings: { name: string; verdict: string }[]) => Object.fromEntries(findings.map((f) => [f.name, f.verdict]));

describe("external auth annotations", () => {
  test("a full set is read into the policy; auth-signin gets the redirect parameter", () => {
    const configMaps = [{ metadata: { name: "auth-headers", namespace: "default" }, data: { "X-Tenant": "blue" } }];
    const { policy, findings } = policyOf(
      a({
        "auth-url": "https://auth.example/check?u=$escaped_request_uri",
        "auth-method": "post",
        "auth-signin": "https://login.example/start",
        "auth-signin-redirect-param": "next",
        "auth-response-headers": "X-User, X-Email",
        "auth-request-redirect": "$scheme://$host/",
        "auth-always-set-cookie": "true",
        "auth-cache-key": "$host",
        "auth-cache-duration": "200 202 10m, 401 1m",
        "auth-proxy-set-headers": "auth-headers",
      }),
      { configMaps },
    );
    const ea = policy.externalAuth;
    assert.ok(ea);
    assert.equal(policy.refuse, null);
    assert.equal(templateText(ea.url), "https://auth.example/check?u=$escaped_request_uri");
    assert.equal(ea.method, "POST");
    assert.equal(templateText(ea.signin ?? []), "https://login.example/start?next=$scheme://$http_host$escaped_request_uri");
    assert.deepEqual(ea.responseHeaders, ["X-User", "X-Email"]);
    assert.equal(templateText(ea.requestRedirect ?? []), "$scheme://$host/");
    assert.equal(ea.alwaysSetCookie, true);
    assert.equal(ea.cacheSeconds, 600);
    assert.deepEqual(ea.proxySetHeaders, [["X-Tenant", "blue"]]);
    assert.equal(verdicts(findings)["auth-cache-duration"], "different", "401 answers are not cached");
  });

  test("defaults: GET, no signin, no cache without auth-cache-key; a signin that has the parameter is kept", () => {
    const { policy } = policyOf(a({ "auth-url": "http://auth.svc/check", "auth-signin": "https://login/?rd=https://x/" }));
    assert.equal(policy.externalAuth?.method, "GET");
    assert.equal(policy.externalAuth?.cacheSeconds, 0);
    assert.equal(templateText(policy.externalAuth?.signin ?? []), "https://login/?rd=https://x/");
  });

  const invalid: [string, Record<string, string>, string, RegExp][] = [
    ["an unknown variable", { "auth-url": "http://auth/$request_body" }, "auth-url", /\$request_body is not one of/],
    ["not http(s)", { "auth-url": "ftp://auth/check" }, "auth-url", /not an http/],
    ["$host as the host where a rule has no exact host", { "auth-url": "http://$host/check" }, "auth-url", /every rule of the Ingress to name an exact host/],
    ["another variable in the host", { "auth-url": "http://$http_x_auth/check" }, "auth-url", /must be literal, or exactly \$host/],
    ["$host with more around it", { "auth-url": "http://auth.$host/check" }, "auth-url", /must be literal, or exactly \$host/],
    ["credentials in the URL", { "auth-url": "http://u:p@auth/check" }, "auth-url", /credentials/],
    ["a bad method", { "auth-url": "http://auth/", "auth-method": "FETCH" }, "auth-method", /not an HTTP method/],
    ["a bad header name", { "auth-url": "http://auth/", "auth-response-headers": "X-Ok, Bad Header" }, "auth-response-headers", /not a header name/],
    ["a bad signin", { "auth-url": "http://auth/", "auth-signin": "javascript:alert(1)" }, "auth-signin", /not an http/],
    ["a bad duration", { "auth-url": "http://auth/", "auth-cache-duration": "200 soon" }, "auth-cache-duration", /duration/],
    ["a missing ConfigMap", { "auth-url": "http://auth/", "auth-proxy-set-headers": "nope" }, "auth-proxy-set-headers", /not found/],
    ["a bad boolean", { "auth-url": "http://auth/", "auth-always-set-cookie": "yes" }, "auth-always-set-cookie", /neither/],
    ["a bad enable-global-auth", { "enable-global-auth": "maybe" }, "enable-global-auth", /neither/],
  ];
  for (const [what, values, name, message] of invalid) {
    test(`invalid (${what}) fails closed: 503`, () => {
      const { policy, findings } = policyOf(a(values));
      const f = findings.find((x) => x.name === name);
      assert.equal(f?.verdict, "invalid");
      assert.match(f?.message ?? "", message);
      assert.equal(policy.refuse?.status, 503);
    });
  }

  test("oauth2-proxy's setup: $host as the auth server and the sign-in page, where every rule names an exact host", () => {
    const values = a({ "auth-url": "https://$host/oauth2/auth", "auth-signin": "https://$host/oauth2/start?rd=$escaped_request_uri" });
    const { policy, findings } = policyOf(values, { fixedHosts: true });
    assert.deepEqual(
      findings.map((f) => [f.name, f.verdict]),
      [
        ["auth-signin", "supported"],
        ["auth-url", "supported"],
      ],
    );
    assert.equal(policy.refuse, null);
    assert.equal(templateText(policy.externalAuth?.url ?? []), "https://$host/oauth2/auth");
    // the sign-in page is a redirect the client follows itself: any variable may name its host
    assert.equal(policyOf(a({ "auth-url": "http://auth/", "auth-signin": "https://$http_x_login/start" })).policy.refuse, null);
  });

  test("a ConfigMap header that would replace what the auth request sets itself is refused", () => {
    const configMaps = [{ metadata: { name: "h", namespace: "default" }, data: { "X-Original-URL": "http://evil/" } }];
    const { policy } = policyOf(a({ "auth-url": "http://auth/", "auth-proxy-set-headers": "h" }), { configMaps });
    assert.equal(policy.refuse?.status, 503);
  });

  test("auth-* without auth-url: no effect, said so, no refusal", () => {
    const { policy, findings } = policyOf(a({ "auth-signin": "https://login/" }));
    assert.equal(policy.externalAuth, null);
    assert.equal(policy.refuse, null);
    assert.equal(verdicts(findings)["auth-signin"], "different");
  });

  test("global auth applies unless enable-global-auth is false or the Ingress has its own auth-url", () => {
    const globals = { ...DEFAULT_GLOBALS, globalAuthUrl: "http://global/check", globalAuthSignin: "https://login/", globalAuthResponseHeaders: ["X-User"] };
    const g = policyOf({}, { globals }).policy.externalAuth;
    assert.equal(templateText(g?.url ?? []), "http://global/check");
    assert.deepEqual(g?.responseHeaders, ["X-User"]);
    assert.equal(policyOf(a({ "enable-global-auth": "false" }), { globals }).policy.externalAuth, null);
    assert.equal(templateText(policyOf(a({ "auth-url": "http://own/" }), { globals }).policy.externalAuth?.url ?? []), "http://own/");
    const broken = policyOf({}, { globals: { ...globals, globalAuthUrl: "http://$host/" } }).policy;
    assert.equal(broken.refuse?.status, 503);
    assert.match(broken.refuse?.reason ?? "", /global-auth-url/);
  });
});
