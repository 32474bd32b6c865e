// Pure parts of the shell: which Ingress statuses need writing, flag parsing of object refs and CIDRs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidCidrError, type Ingress, loadBalancerAddresses, ObjectRefError, parseObjectRef, parseTrustedProxies, statusUpdates } from "../src/index.ts";
import { realClientAddress } from "../src/proxy/trust.ts";

const ingress = (name: string, addresses?: { ip?: string; hostname?: string }[]): Ingress => ({
  metadata: { name, namespace: "default" },
  ...(addresses ? { status: { loadBalancer: { ingress: addresses } } } : {}),
});

describe("statusUpdates", () => {
  const ours = [{ namespace: "default", name: "a" }, { namespace: "default", name: "b" }, { namespace: "default", name: "c" }];
  const cases: { name: string; ingresses: Ingress[]; addresses: { ip?: string; hostname?: string }[]; expect: string[] }[] = [
    { name: "no status yet → write", ingresses: [ingress("a")], addresses: [{ ip: "192.0.2.1" }], expect: ["a"] },
    { name: "already equal, in another order → nothing", ingresses: [ingress("a", [{ ip: "192.0.2.2" }, { ip: "192.0.2.1" }])], addresses: [{ ip: "192.0.2.1" }, { ip: "192.0.2.2" }], expect: [] },
    { name: "different → write", ingresses: [ingress("a", [{ ip: "192.0.2.9" }])], addresses: [{ ip: "192.0.2.1" }], expect: ["a"] },
    { name: "the Service lost its address → clear", ingresses: [ingress("a", [{ ip: "192.0.2.9" }])], addresses: [], expect: ["a"] },
    { name: "not ours → never touched", ingresses: [ingress("zzz")], addresses: [{ ip: "192.0.2.1" }], expect: [] },
    { name: "hostnames count", ingresses: [ingress("b", [{ ip: "192.0.2.1" }])], addresses: [{ ip: "192.0.2.1", hostname: "lb.example" }], expect: ["b"] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(
        statusUpdates(c.ingresses, ours, c.addresses).map((u) => u.ingress.name),
        c.expect,
      );
    });
  }

  test("loadBalancerAddresses keeps ip and hostname only", () => {
    assert.deepEqual(loadBalancerAddresses({ metadata: { name: "lb" }, status: { loadBalancer: { ingress: [{ ip: "192.0.2.1", ports: [{ port: 80, protocol: "TCP" }] }] } } }), [{ ip: "192.0.2.1" }]);
    assert.deepEqual(loadBalancerAddresses(undefined), []);
  });
});

describe("flags", () => {
  test("parseObjectRef", () => {
    assert.deepEqual(parseObjectRef("--publish-service", "ingress/lb"), { namespace: "ingress", name: "lb" });
    for (const bad of ["lb", "a/b/c", "/lb", "ns/"]) assert.throws(() => parseObjectRef("--publish-service", bad), ObjectRefError);
  });

  test("trusted proxies: CIDRs of both families, single addresses, mapped IPv4 peers", () => {
    const trusted = parseTrustedProxies(["10.0.0.0/8", "fd00::/8", "192.0.2.7"]);
    assert.equal(trusted.has("10.1.2.3"), true);
    assert.equal(trusted.has("::ffff:10.1.2.3"), true);
    assert.equal(trusted.has("fd12::1"), true);
    assert.equal(trusted.has("192.0.2.7"), true);
    assert.equal(trusted.has("192.0.2.8"), false);
    assert.equal(trusted.has("11.0.0.1"), false);
    assert.equal(parseTrustedProxies([]).has("10.0.0.1"), false);
    for (const bad of ["10.0.0.0/33", "nope", "10.0.0.0/", "fd00::/129", "10.0.0.0/8x"]) assert.throws(() => parseTrustedProxies([bad]), InvalidCidrError, bad);
  });

  test("real client address walks X-Forwarded-For from the right past trusted hops", () => {
    const trusted = parseTrustedProxies(["10.0.0.0/8"]);
    assert.equal(realClientAddress("10.0.0.1", "203.0.113.5, 10.0.0.2", trusted), "203.0.113.5");
    assert.equal(realClientAddress("10.0.0.1", "6.6.6.6, 203.0.113.5", trusted), "203.0.113.5");
    assert.equal(realClientAddress("203.0.113.9", "6.6.6.6", trusted), "203.0.113.9");
    assert.equal(realClientAddress("10.0.0.1", "10.0.0.3, 10.0.0.2", trusted), "10.0.0.3");
    assert.equal(realClientAddress("10.0.0.1", undefined, trusted), "10.0.0.1");
  });
});
