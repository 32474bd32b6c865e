// Pure parts of the shell: which Ingress statuses need writing, flag parsing of object refs and CIDRs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidCidrError, type Ingress, loadBalancerAddresses, ObjectRefError, parseObjectRef, parseTrustedProxies, statusUpdates } from "../src/index.ts";
import { isPublishedBy } from "../src/status/publish.ts";

const MANAGER = "bollard-ingress-bollard";

/** An Ingress as the API serves it, with who last wrote its status (`writer`), as metadata.managedFields says. */
const ingress = (name: string, addresses?: { ip?: string; hostname?: string }[], writer?: string): Ingress => ({
  metadata: {
    name,
    namespace: "default",
    resourceVersion: "42",
    ...(writer ? { managedFields: [{ manager: writer, operation: "Update", subresource: "status", fieldsType: "FieldsV1", fieldsV1: { "f:status": { "f:loadBalancer": { "f:ingress": {} } } } }] } : {}),
  } as Ingress["metadata"],
  ...(addresses ? { status: { loadBalancer: { ingress: addresses } } } : {}),
});

describe("statusUpdates", () => {
  const ours = [{ namespace: "default", name: "a" }, { namespace: "default", name: "b" }, { namespace: "default", name: "c" }];
  type Expect = { name: string; addresses: { ip?: string; hostname?: string }[]; resourceVersion: string | null };
  const cases: { name: string; ingresses: Ingress[]; addresses: { ip?: string; hostname?: string }[]; expect: Expect[] }[] = [
    { name: "no status yet → write", ingresses: [ingress("a")], addresses: [{ ip: "192.0.2.1" }], expect: [{ name: "a", addresses: [{ ip: "192.0.2.1" }], resourceVersion: null }] },
    { name: "already equal, in another order → nothing", ingresses: [ingress("a", [{ ip: "192.0.2.2" }, { ip: "192.0.2.1" }])], addresses: [{ ip: "192.0.2.1" }, { ip: "192.0.2.2" }], expect: [] },
    { name: "different → write", ingresses: [ingress("a", [{ ip: "192.0.2.9" }], "other")], addresses: [{ ip: "192.0.2.1" }], expect: [{ name: "a", addresses: [{ ip: "192.0.2.1" }], resourceVersion: null }] },
    { name: "the Service lost its address → clear", ingresses: [ingress("a", [{ ip: "192.0.2.9" }], MANAGER)], addresses: [], expect: [{ name: "a", addresses: [], resourceVersion: null }] },
    { name: "ours, no address either side → nothing", ingresses: [ingress("a", [])], addresses: [], expect: [] },
    { name: "not ours, never written → never touched", ingresses: [ingress("zzz")], addresses: [{ ip: "192.0.2.1" }], expect: [] },
    {
      name: "not ours any more, our address on it → cleared, only if unchanged since",
      ingresses: [ingress("was-ours", [{ ip: "192.0.2.1" }], MANAGER)],
      addresses: [{ ip: "192.0.2.1" }],
      expect: [{ name: "was-ours", addresses: [], resourceVersion: "42" }],
    },
    { name: "not ours, another controller's address → never touched", ingresses: [ingress("theirs", [{ ip: "198.51.100.7" }], "ingress-nginx")], addresses: [{ ip: "192.0.2.1" }], expect: [] },
    { name: "not ours, another bollard class wrote it → never touched", ingresses: [ingress("theirs", [{ ip: "192.0.2.1" }], "bollard-ingress-internal")], addresses: [{ ip: "192.0.2.1" }], expect: [] },
    { name: "not ours, already cleared → nothing", ingresses: [ingress("was-ours", [], MANAGER)], addresses: [{ ip: "192.0.2.1" }], expect: [] },
    { name: "hostnames count", ingresses: [ingress("b", [{ ip: "192.0.2.1" }])], addresses: [{ ip: "192.0.2.1", hostname: "lb.example" }], expect: [{ name: "b", addresses: [{ ip: "192.0.2.1", hostname: "lb.example" }], resourceVersion: null }] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(
        statusUpdates(c.ingresses, ours, c.addresses, MANAGER).map((u) => ({ name: u.ingress.name, addresses: u.addresses, resourceVersion: u.resourceVersion })),
        c.expect,
      );
    });
  }

  test("only a status write counts as publishing: a spec write by the same manager does not", () => {
    const specOnly = ingress("x", [{ ip: "192.0.2.1" }]);
    (specOnly.metadata as { managedFields?: unknown[] }).managedFields = [{ manager: MANAGER, operation: "Update", fieldsType: "FieldsV1", fieldsV1: { "f:spec": {} } }];
    assert.equal(isPublishedBy(specOnly, MANAGER), false);
    assert.equal(isPublishedBy(ingress("y", [{ ip: "192.0.2.1" }], MANAGER), MANAGER), true);
  });

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
});
