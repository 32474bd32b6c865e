// Who may reach a route and how often, and CORS: annotations in, policy and findings out.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { DEFAULT_GLOBALS } from "../../src/annotations/globals.ts";
import type { Secret } from "../../src/model/objects.ts";
import { policyOf } from "./cases.ts";

const P = "nginx.ingress.kubernetes.io";
const a = (annotations: Record<string, string>) => Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`${P}/${k}`, v]));
/** [name, verdict, refuses] of each finding */
const verdicts = (findings: { name: string; verdict: string; refuses: boolean }[]) => findings.map((f) => [f.name, f.verdict, f.refuses]);

describe("source ranges", () => {
  const cases: [string, Record<string, string>, unknown, unknown[]][] = [
    ["an allow list of IPv4, IPv6 and single addresses", { "allowlist-source-range": "10.0.0.0/8, 2001:db8::/32,192.0.2.1" }, { allow: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"], deny: [] }, [["allowlist-source-range", "supported", false]]],
    ["the old spelling alone", { "whitelist-source-range": "10.0.0.0/8" }, { allow: ["10.0.0.0/8"], deny: [] }, [["whitelist-source-range", "supported", false]]],
    [
      "both spellings: allowlist wins, as ingress-nginx reads it first",
      { "allowlist-source-range": "10.0.0.0/8", "whitelist-source-range": "0.0.0.0/0" },
      { allow: ["10.0.0.0/8"], deny: [] },
      [
        ["allowlist-source-range", "supported", false],
        ["whitelist-source-range", "different", false],
      ],
    ],
    ["a deny list", { "denylist-source-range": "203.0.113.0/24,fd00::1" }, { allow: [], deny: ["203.0.113.0/24", "fd00::1"] }, [["denylist-source-range", "supported", false]]],
  ];
  for (const [what, annotations, access, findings] of cases) {
    test(what, () => {
      const { policy, findings: got } = policyOf(a(annotations));
      assert.deepEqual(policy.access, access);
      assert.equal(policy.refuse, null);
      assert.deepEqual(verdicts(got), findings);
    });
  }

  // any invalid entry fails the whole Ingress closed: never a part of a list
  for (const [name, value, message] of [
    ["allowlist-source-range", "10.0.0.0/8, 10.0.0.300", /"10.0.0.300" is not an IPv4 or IPv6 address or CIDR/],
    ["whitelist-source-range", "10.0.0.0/33", /"10.0.0.0\/33"/],
    ["denylist-source-range", "fe80::1%eth0", /fe80::1%eth0/],
    ["denylist-source-range", "10.0.0.0/+8", /10.0.0.0\/\+8/],
    ["allowlist-source-range", " , ", /names no address or CIDR/],
    ["allowlist-source-range", "example.com", /"example.com"/],
  ] as const) {
    test(`${name}: "${value}" refuses the Ingress`, () => {
      const { policy, findings } = policyOf(a({ [name]: value }));
      assert.equal(policy.refuse?.status, 503);
      assert.deepEqual(verdicts(findings), [[name, "invalid", true]]);
      assert.match(findings[0]?.message ?? "", message);
    });
  }
});

describe("limits", () => {
  test("rps, rpm and connections with the default multiplier and the globals' status", () => {
    const { policy, findings } = policyOf(a({ "limit-rps": "5", "limit-rpm": "100", "limit-connections": "3" }));
    assert.deepEqual(policy.limits, { rps: 5, rpm: 100, burstMultiplier: 5, connections: 3, allowlist: [], status: 503 });
    assert.ok(findings.every((f) => f.verdict === "supported"));
  });

  test("a multiplier, an allowlist, a status from the ConfigMap", () => {
    const globals = { ...DEFAULT_GLOBALS, limitReqStatusCode: 429 };
    const { policy } = policyOf(a({ "limit-rpm": "10", "limit-burst-multiplier": "2", "limit-allowlist": "10.0.0.0/8, ::1" }), { globals });
    assert.deepEqual(policy.limits, { rps: null, rpm: 10, burstMultiplier: 2, connections: null, allowlist: ["10.0.0.0/8", "::1"], status: 429 });
  });

  test("limit-whitelist is the old spelling; limit-allowlist wins", () => {
    assert.deepEqual(policyOf(a({ "limit-rps": "1", "limit-whitelist": "10.0.0.1" })).policy.limits?.allowlist, ["10.0.0.1"]);
    const { policy, findings } = policyOf(a({ "limit-rps": "1", "limit-whitelist": "10.0.0.1", "limit-allowlist": "10.0.0.2" }));
    assert.deepEqual(policy.limits?.allowlist, ["10.0.0.2"]);
    assert.equal(findings.find((f) => f.name === "limit-whitelist")?.verdict, "different");
  });

  test("0 is no limit; without a limit the rest has nothing to do", () => {
    assert.equal(policyOf(a({ "limit-rps": "0", "limit-burst-multiplier": "3" })).policy.limits, null);
  });

  for (const [name, value] of [
    ["limit-rps", "-1"],
    ["limit-rps", "ten"],
    ["limit-rpm", "1.5"],
    ["limit-connections", "99999999"],
  ] as const) {
    test(`${name}: "${value}" is reported and not applied (not a security annotation)`, () => {
      const { policy, findings } = policyOf(a({ [name]: value }));
      assert.equal(policy.limits, null);
      assert.equal(policy.refuse, null);
      assert.deepEqual(verdicts(findings), [[name, "invalid", false]]);
    });
  }

  test("an invalid multiplier falls back to 5; an invalid allowlist exempts nobody", () => {
    const { policy, findings } = policyOf(a({ "limit-rps": "2", "limit-burst-multiplier": "x", "limit-allowlist": "10.0.0.0/8, nope" }));
    assert.deepEqual(policy.limits, { rps: 2, rpm: null, burstMultiplier: 5, connections: null, allowlist: [], status: 503 });
    assert.deepEqual(verdicts(findings).filter((f) => f[1] !== "supported"), [
      ["limit-allowlist", "invalid", false],
      ["limit-burst-multiplier", "invalid", false],
    ]);
    assert.match(findings.find((f) => f.name === "limit-allowlist")?.message ?? "", /"nope".*no address is exempted/);
  });
});

describe("CORS", () => {
  const defaults = DEFAULT_GLOBALS.cors;

  test("enable-cors alone: ingress-nginx's defaults", () => {
    const { policy, findings } = policyOf(a({ "enable-cors": "true" }));
    assert.deepEqual(policy.cors, {
      allowOrigins: ["*"],
      allowMethods: "GET, PUT, POST, DELETE, PATCH, OPTIONS",
      allowHeaders: "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
      exposeHeaders: "",
      allowCredentials: true,
      maxAge: 1728000,
    });
    assert.deepEqual(verdicts(findings), [["enable-cors", "supported", false]]);
  });

  test("every option set", () => {
    const { policy, findings } = policyOf(
      a({
        "enable-cors": "true",
        "cors-allow-origin": "https://a.example:8443, http://*.b.example",
        "cors-allow-methods": "POST, GET",
        "cors-allow-headers": "X-A, X-B",
        "cors-expose-headers": "X-C, *",
        "cors-allow-credentials": "false",
        "cors-max-age": "200",
      }),
    );
    assert.deepEqual(policy.cors, { allowOrigins: ["https://a.example:8443", "http://*.b.example"], allowMethods: "POST, GET", allowHeaders: "X-A, X-B", exposeHeaders: "X-C, *", allowCredentials: false, maxAge: 200 });
    assert.ok(findings.every((f) => f.verdict === "supported"));
  });

  test("`*` anywhere in the list, or a blank list, allows every origin (as ingress-nginx)", () => {
    assert.deepEqual(policyOf(a({ "enable-cors": "true", "cors-allow-origin": "*, foo.bar.com" })).policy.cors?.allowOrigins, ["*"]);
    assert.deepEqual(policyOf(a({ "enable-cors": "true", "cors-allow-origin": "   " })).policy.cors?.allowOrigins, ["*"]);
  });

  test("origins that are not ones are reported and left out; all of them: none is allowed", () => {
    const { policy, findings } = policyOf(a({ "enable-cors": "true", "cors-allow-origin": "origin.cors.com:8080, https://origin2.cors.com" }));
    assert.deepEqual(policy.cors?.allowOrigins, ["https://origin2.cors.com"]);
    assert.deepEqual(verdicts(findings.filter((f) => f.name === "cors-allow-origin")), [["cors-allow-origin", "invalid", false]]);
    assert.match(findings.find((f) => f.name === "cors-allow-origin")?.message ?? "", /"origin.cors.com:8080" is not an origin/);
    const none = policyOf(a({ "enable-cors": "true", "cors-allow-origin": "a.com, http://*.*.b.com" }));
    assert.deepEqual(none.policy.cors?.allowOrigins, []);
    assert.match(none.findings.find((f) => f.name === "cors-allow-origin")?.message ?? "", /no origin is allowed/);
  });

  for (const [name, value, used] of [
    ["cors-allow-methods", "GET; DROP", defaults.allowMethods],
    ["cors-allow-headers", "X-A\r\nX-Evil: 1", defaults.allowHeaders],
    ["cors-expose-headers", "X A", defaults.exposeHeaders],
  ] as const) {
    test(`${name}: "${JSON.stringify(value)}" is reported; the default is used`, () => {
      const { policy, findings } = policyOf(a({ "enable-cors": "true", [name]: value }));
      const field = { "cors-allow-methods": "allowMethods", "cors-allow-headers": "allowHeaders", "cors-expose-headers": "exposeHeaders" }[name];
      assert.equal((policy.cors as unknown as Record<string, string>)[field], used);
      assert.deepEqual(verdicts(findings.filter((f) => f.name === name)), [[name, "invalid", false]]);
    });
  }

  test("an invalid max-age or credentials falls back to the default", () => {
    const { policy, findings } = policyOf(a({ "enable-cors": "true", "cors-max-age": "-1", "cors-allow-credentials": "yes" }));
    assert.equal(policy.cors?.maxAge, 1728000);
    assert.equal(policy.cors?.allowCredentials, true);
    assert.equal(findings.filter((f) => f.verdict === "invalid").length, 2);
  });

  test("the ConfigMap's cors defaults apply", () => {
    const globals = { ...DEFAULT_GLOBALS, cors: { ...defaults, allowOrigin: "https://app.example", maxAge: 10, allowCredentials: false } };
    assert.deepEqual(policyOf(a({ "enable-cors": "true" }), { globals }).policy.cors, { ...policyOf(a({ "enable-cors": "true" })).policy.cors, allowOrigins: ["https://app.example"], maxAge: 10, allowCredentials: false });
  });

  test("cors-* without enable-cors: no CORS, and each says so", () => {
    const { policy, findings } = policyOf(a({ "cors-allow-origin": "https://a.example", "enable-cors": "false" }));
    assert.equal(policy.cors, null);
    assert.deepEqual(verdicts(findings), [
      ["cors-allow-origin", "different", false],
      ["enable-cors", "supported", false],
    ]);
    assert.match(findings[0]?.message ?? "", /no effect without enable-cors/);
  });
});

describe("basic auth", () => {
  // `openssl passwd -apr1 -salt r31.KnAq secret`, and {SHA} as `htpasswd -s` makes it
  const apr1 = "$apr1$r31.KnAq$RAJphP9CxYVGpsfL.FKCH.";
  const sha = `{SHA}${createHash("sha1").update("pw").digest("base64")}`;
  const bcrypt = "$2b$05$abcdefghijklmnopqrstuuhKF09ZYWwH2zP/0fwE1X8e/Q1YNx/hO";
  const sha512 = "$6$rounds=5000$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1";
  const secret = (name: string, data: Record<string, string>, namespace = "default"): Secret => ({
    metadata: { name, namespace },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  });
  const file = secret("htpasswd", { auth: `# users\nalice:${apr1}\n\nbob:${sha}\r\ncarol:${bcrypt}\ndave:${sha512}\n` });

  test("auth-file: every user of the htpasswd lines, realm as given", () => {
    const { policy, findings } = policyOf(a({ "auth-type": "basic", "auth-secret": "htpasswd", "auth-realm": "Authentication Required" }), { secrets: [file] });
    assert.deepEqual(policy.basicAuth, {
      realm: "Authentication Required",
      users: [
        { user: "alice", hash: apr1 },
        { user: "bob", hash: sha },
        { user: "carol", hash: bcrypt },
        { user: "dave", hash: sha512 },
      ],
    });
    assert.equal(policy.refuse, null);
    assert.ok(findings.every((f) => f.verdict === "supported"));
  });

  test("auth-map from another namespace: each key a user; the realm defaults to empty", () => {
    const map = { ...secret("users", { erin: apr1 }, "auth"), stringData: { frank: "{PLAIN}x" } };
    const { policy } = policyOf(a({ "auth-type": "basic", "auth-secret": "auth/users", "auth-secret-type": "auth-map" }), { secrets: [map] });
    assert.deepEqual(policy.basicAuth, { realm: "", users: [{ user: "erin", hash: apr1 }, { user: "frank", hash: "{PLAIN}x" }] });
  });

  const refusals: [string, Record<string, string>, Secret[], string, RegExp][] = [
    ["a missing Secret", { "auth-type": "basic", "auth-secret": "nope" }, [], "auth-secret", /Secret "nope" not found/],
    ["no auth-secret", { "auth-type": "basic" }, [], "auth-type", /needs auth-secret/],
    ["no key `auth`", { "auth-type": "basic", "auth-secret": "s" }, [secret("s", { users: `a:${apr1}` })], "auth-secret", /has no key "auth"/],
    ["an empty file", { "auth-type": "basic", "auth-secret": "s" }, [secret("s", { auth: "\n# nobody\n" })], "auth-secret", /has no user/],
    ["a line without colon", { "auth-type": "basic", "auth-secret": "s" }, [secret("s", { auth: `alice:${apr1}\ngarbage` })], "auth-secret", /line 2 is not "user:hash"/],
    ["a DES crypt line", { "auth-type": "basic", "auth-secret": "s" }, [secret("s", { auth: "old:abJnggxhB/yWI" })], "auth-secret", /line 1 \(user "old"\): DES crypt\(3\) hashes are not supported/],
    ["an unknown hash", { "auth-type": "basic", "auth-secret": "s" }, [secret("s", { auth: "x:$9$abc" })], "auth-secret", /not a supported hash/],
    ["too few SHA-crypt rounds", { "auth-type": "basic", "auth-secret": "s" }, [secret("s", { auth: `x:${sha512.replace("rounds=5000", "rounds=999")}` })], "auth-secret", /rounds must be/],
    ["digest", { "auth-type": "digest", "auth-secret": "htpasswd" }, [file], "auth-type", /digest is not supported/],
    ["another type", { "auth-type": "form", "auth-secret": "htpasswd" }, [file], "auth-type", /"form" is not "basic"/],
    ["a bad secret type", { "auth-type": "basic", "auth-secret": "htpasswd", "auth-secret-type": "ldap" }, [file], "auth-secret-type", /"ldap" is neither/],
    ["auth-secret without auth-type (ingress-nginx would serve it open)", { "auth-secret": "htpasswd" }, [file], "auth-secret", /no effect without auth-type/],
    ["a realm with a control character", { "auth-type": "basic", "auth-secret": "htpasswd", "auth-realm": "a\u0007b" }, [file], "auth-realm", /control characters/],
  ];
  for (const [what, annotations, secrets, name, message] of refusals) {
    test(`${what} refuses the Ingress (503)`, () => {
      const { policy, findings } = policyOf(a(annotations), { secrets });
      assert.equal(policy.refuse?.status, 503);
      assert.equal(policy.basicAuth, null);
      const finding = findings.find((f) => f.name === name);
      assert.deepEqual([finding?.verdict, finding?.refuses], ["invalid", true]);
      assert.match(finding?.message ?? "", message);
    });
  }

  test("a hash never appears in a message", () => {
    const { findings } = policyOf(a({ "auth-type": "basic", "auth-secret": "s" }), { secrets: [secret("s", { auth: "x:$2y$99$secrethashsecrethash" })] });
    assert.doesNotMatch(findings[1]?.message ?? "", /secrethash/);
  });
});
