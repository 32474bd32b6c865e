// Redirect annotations in, RedirectPolicy and findings out: ssl-redirect, force-ssl-redirect,
// preserve-trailing-slash, permanent-/temporal-redirect(-code), app-root, from-to-www-redirect, server-alias.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_REDIRECT } from "../../src/annotations/policy.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";

const cases: { name: string; annotations: Record<string, string>; redirect: Partial<typeof DEFAULT_REDIRECT>; findings: [string, string, RegExp?][] }[] = [
  { name: "no annotations: the defaults", annotations: {}, redirect: {}, findings: [] },
  {
    name: "the HTTPS switches and the trailing slash",
    annotations: { "ssl-redirect": "false", "force-ssl-redirect": "true", "preserve-trailing-slash": "true" },
    redirect: { sslRedirect: false, forceSslRedirect: true, preserveTrailingSlash: true },
    findings: [["force-ssl-redirect", "supported"], ["preserve-trailing-slash", "supported"], ["ssl-redirect", "supported"]],
  },
  {
    name: "permanent-redirect defaults to 301, with variables",
    annotations: { "permanent-redirect": "https://new.test$request_uri" },
    redirect: { to: { url: [{ text: "https://new.test" }, { variable: "request_uri" }], code: 301 } },
    findings: [["permanent-redirect", "supported"]],
  },
  {
    name: "temporal-redirect wins over permanent-redirect; its code is 302 by default",
    annotations: { "permanent-redirect": "https://p.test", "permanent-redirect-code": "308", "temporal-redirect": "http://t.test/x" },
    redirect: { to: { url: [{ text: "http://t.test/x" }], code: 302 } },
    findings: [["permanent-redirect", "supported"], ["permanent-redirect-code", "supported"], ["temporal-redirect", "supported"]],
  },
  {
    name: "a code out of ingress-nginx's range falls back to the default, reported",
    annotations: { "temporal-redirect": "http://t.test", "temporal-redirect-code": "308" },
    redirect: { to: { url: [{ text: "http://t.test" }], code: 302 } },
    findings: [["temporal-redirect", "supported"], ["temporal-redirect-code", "invalid", /"308" is not an integer in 300\.\.307; 302 is used/]],
  },
  {
    name: "a relative or non-HTTP redirect URL is refused",
    annotations: { "permanent-redirect": "/elsewhere", "temporal-redirect": "ftp://x" },
    redirect: {},
    findings: [["permanent-redirect", "invalid", /only absolute http/], ["temporal-redirect", "invalid", /only absolute http/]],
  },
  {
    name: "variables the redirect cannot know, and unknown ones, are refused",
    annotations: { "permanent-redirect": "https://x.test/$remote_addr", "temporal-redirect": "https://x.test/$sent_http_a" },
    redirect: {},
    findings: [["permanent-redirect", "invalid", /\$remote_addr is not known/], ["temporal-redirect", "invalid", /\$sent_http_a is not one of/]],
  },
  { name: "app-root is a path", annotations: { "app-root": "/app1" }, redirect: { appRoot: "/app1" }, findings: [["app-root", "supported"]] },
  {
    name: "an absolute app-root is refused (as ingress-nginx does)",
    annotations: { "app-root": "http://x.test/app" },
    redirect: {},
    findings: [["app-root", "invalid", /a path starting with one "\/"/]],
  },
  { name: "from-to-www-redirect", annotations: { "from-to-www-redirect": "true" }, redirect: { fromToWww: true }, findings: [["from-to-www-redirect", "supported"]] },
  {
    name: "server-alias: names that are not DNS names are reported (the compiler serves the others)",
    annotations: { "server-alias": "a.test, *.b.test, c_d" },
    redirect: {},
    findings: [["server-alias", "invalid", /"\*\.b\.test", "c_d" are not DNS names/]],
  },
];

describe("redirect annotations", () => {
  for (const c of cases) {
    test(c.name, () => {
      const annotations = Object.fromEntries(Object.entries(c.annotations).map(([k, v]) => [`${P}/${k}`, v]));
      const { policy, findings } = policyOf(annotations);
      assert.deepEqual(policy.redirect, { ...DEFAULT_REDIRECT, ...c.redirect });
      assert.deepEqual(
        findings.map((f) => [f.name, f.verdict]),
        c.findings.map(([n, v]) => [n, v]),
      );
      for (const [name, , message] of c.findings) if (message) assert.match(findings.find((f) => f.name === name)?.message ?? "", message);
      assert.equal(policy.refuse, null);
    });
  }
});
