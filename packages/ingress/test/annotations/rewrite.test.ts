// Rewrite annotations in, RewritePolicy and findings out (use-regex, rewrite-target, x-forwarded-prefix,
// upstream-vhost), enable-access-log, and what a regex path may be.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { regexPathError } from "../../src/router/regex.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";
const of = (annotations: Record<string, string>) => policyOf(Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v])));

describe("rewrite annotations", () => {
  const cases: { name: string; annotations: Record<string, string>; rewrite: unknown; invalid?: [string, RegExp] }[] = [
    { name: "none", annotations: {}, rewrite: null },
    { name: "use-regex alone", annotations: { "use-regex": "true" }, rewrite: { useRegex: true, target: null, forwardedPrefix: null, upstreamVhost: null } },
    {
      name: "rewrite-target with captures",
      annotations: { "rewrite-target": "/new/$2?a=1" },
      rewrite: { useRegex: false, target: [{ text: "/new/" }, { capture: 2 }, { text: "?a=1" }], forwardedPrefix: null, upstreamVhost: null },
    },
    { name: "rewrite-target starting with a capture", annotations: { "rewrite-target": "$1" }, rewrite: { useRegex: false, target: [{ capture: 1 }], forwardedPrefix: null, upstreamVhost: null } },
    { name: "a capture past $9", annotations: { "rewrite-target": "/$10" }, rewrite: null, invalid: ["rewrite-target", /captures are \$1 to \$9/] },
    { name: "a target that is not a path", annotations: { "rewrite-target": "new" }, rewrite: null, invalid: ["rewrite-target", /starts with "\/"/] },
    { name: "a target with a space", annotations: { "rewrite-target": "/a b" }, rewrite: null, invalid: ["rewrite-target", /no spaces/] },
    {
      name: "x-forwarded-prefix and upstream-vhost with a variable",
      annotations: { "x-forwarded-prefix": "/api", "upstream-vhost": "$service_name.internal:8080" },
      rewrite: { useRegex: false, target: null, forwardedPrefix: "/api", upstreamVhost: [{ variable: "service_name" }, { text: ".internal:8080" }] },
    },
    { name: "x-forwarded-prefix with a variable", annotations: { "x-forwarded-prefix": "/$host" }, rewrite: null, invalid: ["x-forwarded-prefix", /without variables/] },
    { name: "upstream-vhost that is not a host", annotations: { "upstream-vhost": "a b" }, rewrite: null, invalid: ["upstream-vhost", /a host \(and port\)/] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { policy, findings } = of(c.annotations);
      assert.deepEqual(policy.rewrite, c.rewrite);
      const invalid = findings.filter((f) => f.verdict !== "supported");
      if (c.invalid === undefined) assert.deepEqual(invalid, []);
      else {
        assert.deepEqual(
          invalid.map((f) => [f.name, f.verdict, f.refuses]),
          [[c.invalid[0], "invalid", false]],
        );
        assert.match(invalid[0]?.message ?? "", c.invalid[1]);
      }
    });
  }

  test("enable-access-log", () => {
    assert.equal(of({ "enable-access-log": "false" }).policy.accessLog, false);
    assert.equal(of({ "enable-access-log": "true" }).policy.accessLog, true);
    assert.equal(of({ "enable-access-log": "no" }).findings[0]?.verdict, "invalid");
  });
});

describe("regex paths: the dialect both matchers read alike", () => {
  test("what ingress-nginx users write is accepted", () => {
    for (const p of ["/something(/|$)(.*)", "/foo/bar/[a-z]{3}", "/api/v[0-9]+/(?:users|groups)/\\d+", "/static/.*\\.(css|js)$", "/a.+?b", "/x{2,}", "/[^/]+/edit", "/[-a-z_]+", "/a\\/b\\-c", "/\\w+\\b"]) {
      assert.equal(regexPathError(p), null, p);
    }
  });

  test("what one engine would read differently, or refuse, is refused", () => {
    const refused: [string, RegExp][] = [
      ["/a(?=b)", /only \(\?:…\) groups/],
      ["/a(?<n>b)", /only \(\?:…\) groups/],
      ["/(a)\\1", /\\1 at 4 is not supported/],
      ["/a\\sb", /\\s at 2/],
      ["/a\\x41", /\\x at 2/],
      ["/[[:alpha:]]", /"\[" at 2 inside a class/],
      ["/[a&&b]", /"&&" at 3/],
      ["/[]a]", /starts with "\]"/],
      ["/a{", /is not a repetition/],
      ["/a{,3}", /is not a repetition/],
      ["/a**", /repeats nothing/],
      ["/(*a)", /repeats nothing/],
      ["/a|?", /repeats nothing/],
      ["/(a", /not closed/],
      ["/a)", /closes no group/],
      ["/a]", /"\]" at 2 is not escaped/],
      ["/(a{1,100}){1,100}", /multiply past 1000/],
      ["/caf\u00e9", /ASCII/],
      ["/[z-a]", /Range out of order|range/i],
    ];
    for (const [p, message] of refused) assert.match(regexPathError(p) ?? "(accepted)", message, p);
  });
});
