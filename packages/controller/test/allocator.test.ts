import assert from "node:assert/strict";
import { test } from "node:test";
import { formatIP, parseIP } from "@bollard/core";
import { loadPools, type Pool } from "@bollard/core";
import { planAllocations, poolSize, type ServiceRequest } from "../src/index.ts";

function pools(specs: Record<string, unknown>[]): Pool[] {
  const result = loadPools(specs.map((spec, i) => ({ metadata: { name: `p${i}`, namespace: "ns" }, spec })));
  if ("errors" in result) throw result.errors[0];
  return result.pools;
}

function request(name: string, overrides: Partial<ServiceRequest> = {}): ServiceRequest {
  return {
    key: `default/${name}`,
    namespace: "default",
    namespaceLabels: {},
    labels: {},
    loadBalancerIPs: undefined,
    loadBalancerIP: undefined,
    pool: undefined,
    sharingKey: undefined,
    ports: [{ protocol: "TCP", port: 80 }],
    externalTrafficPolicy: "Cluster",
    selector: {},
    ipFamilies: [4],
    ipFamilyPolicy: "SingleStack",
    ...overrides,
  };
}

const sizes: [string, Record<string, unknown>, { 4: bigint; 6: bigint }][] = [
  ["a /24", { addresses: ["10.0.0.0/24"] }, { 4: 256n, 6: 0n }],
  ["a /24 avoiding .0 and .255", { addresses: ["10.0.0.0/24"], avoidBuggyIPs: true }, { 4: 254n, 6: 0n }],
  ["a /16 avoiding .0 and .255", { addresses: ["10.0.0.0/16"], avoidBuggyIPs: true }, { 4: 65536n - 512n, 6: 0n }],
  ["a range across a /24 boundary, avoiding", { addresses: ["10.0.0.250-10.0.1.5"], avoidBuggyIPs: true }, { 4: 10n, 6: 0n }],
  ["a single .255, avoiding", { addresses: ["10.0.0.255/32"], avoidBuggyIPs: true }, { 4: 0n, 6: 0n }],
  ["IPv6 is never buggy", { addresses: ["fd00::/120"], avoidBuggyIPs: true }, { 4: 0n, 6: 256n }],
  ["a /64", { addresses: ["2001:db8::/64", "10.0.0.1/32"] }, { 4: 1n, 6: 1n << 64n }],
  ["the whole IPv6 space", { addresses: ["::/0"] }, { 4: 0n, 6: 1n << 128n }],
];

for (const [name, spec, expected] of sizes) {
  test(`poolSize: ${name}`, () => {
    const [pool] = pools([spec]) as [Pool];
    assert.equal(poolSize(pool, 4), expected[4]);
    assert.equal(poolSize(pool, 6), expected[6]);
  });
}

test("usage counts distinct addresses in use per family; shared addresses count once", () => {
  const config = pools([{ addresses: ["10.0.0.0/30", "fd00::/126"] }]);
  const plan = planAllocations(config, [
    { request: request("a", { sharingKey: "k" }), currentIPs: [] },
    { request: request("b", { sharingKey: "k", ports: [{ protocol: "UDP", port: 80 }] }), currentIPs: [] },
    { request: request("c", { ipFamilies: [4, 6], ipFamilyPolicy: "RequireDualStack" }), currentIPs: [] },
  ]);
  assert.deepEqual(
    plan.outcomes.map((o) => o.ips),
    [["10.0.0.0"], ["10.0.0.0"], ["10.0.0.1", "fd00::"]],
  );
  assert.deepEqual(plan.usage, [
    { pool: "p0", assignedIPv4: 2, assignedIPv6: 1, totalIPv4: 4n, totalIPv6: 4n, availableIPv4: 2n, availableIPv6: 3n },
  ]);
});

test("a /64 pool hands out 5000 addresses walking only the addresses in use", () => {
  const config = pools([{ addresses: ["2001:db8::/64"] }]);
  // Restored addresses scattered over the whole /64, then new ones fill the bottom.
  const scattered = Array.from({ length: 100 }, (_, i) => `2001:db8:0:0:${((i + 1) * 655).toString(16)}::1`);
  const services = [
    ...scattered.map((ip, i) => ({ request: request(`old${i}`, { ipFamilies: [6] }), currentIPs: [ip] })),
    ...Array.from({ length: 5000 }, (_, i) => ({ request: request(`new${i}`, { ipFamilies: [6] }), currentIPs: [] })),
  ];
  const plan = planAllocations(config, services);
  assert.deepEqual(
    plan.outcomes.slice(0, 100).map((o) => o.ips[0]),
    scattered.map((ip) => formatIP(parseIP(ip))),
  );
  assert.equal(plan.outcomes[100]?.ips[0], "2001:db8::");
  assert.equal(plan.outcomes.at(-1)?.ips[0], `2001:db8::${(4999).toString(16)}`);
  assert.equal(new Set(plan.outcomes.map((o) => o.ips[0])).size, 5100);
  assert.equal(plan.usage[0]?.assignedIPv6, 5100);
  assert.equal(plan.usage[0]?.availableIPv6, (1n << 64n) - 5100n);
});
