// IncrementalBgpPlanner against the full recompute (planWithLastGood): random sequences of object changes
// (seeded), after each of which both must give the same announcements, reasons, errors, effective objects and
// kept keys; and one row per kind of change for what the planner replans.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BgpAnnouncementInput, BgpAnnouncementOptions } from "../src/bgp/announce.ts";
import { IncrementalBgpPlanner } from "../src/bgp/incremental.ts";
import { type LastGood, planWithLastGood } from "../src/bgp/last-good.ts";
import type { BGPAdvertisementObject, BGPPeerObject, CommunityObject } from "../src/bgp/objects.ts";
import type { EndpointSliceObject, IPAddressPoolObject, NodeObject, ServiceObject } from "../src/election/objects.ts";

const NS = "metallb-system";
const EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers";

/** mulberry32: small, seeded, good enough to pick changes. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  const chance = (p: number) => next() < p;
  return { int, pick, chance };
}
type Rng = ReturnType<typeof rng>;

type World = {
  [K in keyof BgpAnnouncementInput]: BgpAnnouncementInput[K][number][];
};

let version = 0;
const meta = (name: string, namespace?: string, labels?: Record<string, string>) => ({
  name,
  ...(namespace ? { namespace } : {}),
  ...(labels ? { labels } : {}),
  resourceVersion: String(++version),
});

const NODES = ["n1", "n2", "n3", "n4"];
const POOLS = ["a", "b", "c"];
const PEERS = ["p1", "p2", "p3"];
const ADVS = ["adv1", "adv2", "adv3"];
const SERVICES = Array.from({ length: 24 }, (_, i) => `s${i}`);

function nodeObject(r: Rng, name: string): NodeObject {
  const labels: Record<string, string> = { rack: r.pick(["x", "y"]) };
  if (r.chance(0.15)) labels[EXCLUDE] = "";
  const conditions = r.chance(0.1) ? [{ type: "NetworkUnavailable", status: "True" }] : [{ type: "Ready", status: r.pick(["True", "False"]) }];
  return { metadata: meta(name, undefined, labels), status: { conditions, addresses: [{ type: "InternalIP", address: `10.0.0.${r.int(250) + 1}` }] } };
}

function poolObject(r: Rng, name: string): IPAddressPoolObject {
  const third = POOLS.indexOf(name);
  const addresses = [r.pick([`192.168.${third}.0/24`, `192.168.${third}.0/28`, `192.168.${third}.0-192.168.${third}.19`])];
  if (r.chance(0.5)) addresses.push(`fd00:${third}::/120`);
  if (r.chance(0.05)) addresses.push("not-an-address");
  return { metadata: meta(name, NS, { tier: r.pick(["gold", "silver"]) }), spec: { addresses } };
}

const selector = (r: Rng) => (r.chance(0.05) ? { matchExpressions: [{ key: "rack", operator: "Bogus" }] } : { matchLabels: { rack: r.pick(["x", "y"]) } });

function peerObject(r: Rng, name: string): BGPPeerObject {
  return { metadata: meta(name, NS), spec: { myASN: 64500, peerASN: 64501, peerAddress: "10.9.0.1", ...(r.chance(0.4) ? { nodeSelectors: [selector(r)] } : {}) } };
}

function advertisementObject(r: Rng, name: string): BGPAdvertisementObject {
  const spec: NonNullable<BGPAdvertisementObject["spec"]> = {};
  if (r.chance(0.5)) spec.ipAddressPools = POOLS.filter(() => r.chance(0.5));
  if (r.chance(0.3)) spec.ipAddressPoolSelectors = [{ matchLabels: { tier: r.pick(["gold", "silver"]) } }];
  if (r.chance(0.3)) spec.nodeSelectors = [selector(r)];
  if (r.chance(0.3)) spec.peers = PEERS.filter(() => r.chance(0.5));
  if (r.chance(0.3)) spec.aggregationLength = r.pick([32, 30, 28, 24]);
  if (r.chance(0.2)) spec.aggregationLengthV6 = r.pick([128, 124, 120]);
  if (r.chance(0.4)) spec.localPref = r.int(300);
  if (r.chance(0.5)) spec.communities = [r.pick(["64500:1", "64500:2", "no-export", "vpn", "large:1:2:3", "nonsense"])];
  return { metadata: meta(name, NS), spec };
}

function communityObject(r: Rng): CommunityObject {
  return {
    metadata: meta("aliases", NS),
    spec: { communities: [{ name: "no-export", value: r.pick(["65535:65281", "65535:65282", "bad"]) }, { name: "vpn", value: r.pick(["large:64500:7:7", "64500:7"]) }] },
  };
}

function serviceObject(r: Rng, name: string): ServiceObject {
  const pool = r.int(POOLS.length + 1); // the last: an address in no pool
  const ingress = [{ ip: `192.168.${pool}.${r.int(24)}` }];
  if (r.chance(0.3)) ingress.push({ ip: `fd00:${pool}::${r.int(40).toString(16)}` });
  if (r.chance(0.03)) ingress.push({ ip: "garbage" });
  return {
    metadata: meta(name, "default"),
    spec: {
      type: r.chance(0.9) ? "LoadBalancer" : "ClusterIP",
      externalTrafficPolicy: r.pick(["Cluster", "Local"]),
      ...(r.chance(0.4) ? { loadBalancerClass: "other" } : {}),
    },
    status: { loadBalancer: { ingress } },
  };
}

function sliceObject(r: Rng, name: string, service: string): EndpointSliceObject {
  const endpoints = Array.from({ length: r.int(3) }, () => ({
    conditions: r.pick([{ ready: true }, { ready: false }, { ready: false, serving: true }, {}]),
    ...(r.chance(0.9) ? { nodeName: r.pick(NODES) } : {}),
  }));
  return { metadata: meta(name, "default", { "kubernetes.io/service-name": service }), endpoints };
}

function initialWorld(r: Rng): World {
  const services = SERVICES.filter(() => r.chance(0.8)).map((s) => serviceObject(r, s));
  return {
    nodes: NODES.map((n) => nodeObject(r, n)),
    pools: POOLS.filter(() => r.chance(0.8)).map((p) => poolObject(r, p)),
    peers: PEERS.filter(() => r.chance(0.7)).map((p) => peerObject(r, p)),
    advertisements: ADVS.filter(() => r.chance(0.6)).map((a) => advertisementObject(r, a)),
    communities: [communityObject(r)],
    services,
    endpointSlices: services.filter(() => r.chance(0.8)).map((s) => sliceObject(r, `${s.metadata.name}-1`, s.metadata.name)),
  };
}

/** Replaces (or adds, or deletes) the object named `name` in a list, as an informer's store would. */
function upsert<T extends { metadata: { name: string } }>(list: T[], name: string, make: (() => T) | null): void {
  const i = list.findIndex((o) => o.metadata.name === name);
  if (make === null) {
    if (i >= 0) list.splice(i, 1);
  } else if (i >= 0) list[i] = make();
  else list.push(make());
}

type Change = { kind: string; serviceOnly: boolean };

/** One random change to `w`, in place, as new objects. */
function change(r: Rng, w: World): Change {
  const roll = r.int(100);
  if (roll < 30) {
    const name = r.pick(SERVICES);
    upsert(w.services, name, r.chance(0.15) ? null : () => serviceObject(r, name));
    return { kind: "Service", serviceOnly: true };
  }
  if (roll < 55) {
    const service = r.pick(SERVICES);
    const name = `${service}-${r.int(2) + 1}`;
    upsert(w.endpointSlices, name, r.chance(0.2) ? null : () => sliceObject(r, name, service));
    return { kind: "EndpointSlice", serviceOnly: true };
  }
  if (roll < 62) {
    // A Node's fields the plan does not read (its addresses): must replan nothing.
    const i = r.int(w.nodes.length);
    const node = w.nodes[i] as NodeObject;
    w.nodes[i] = { metadata: { ...node.metadata, resourceVersion: String(++version) }, status: { ...node.status, addresses: [{ type: "InternalIP", address: `10.0.1.${r.int(250)}` }] } };
    return { kind: "Node status", serviceOnly: true };
  }
  if (roll < 70) {
    const name = r.pick(NODES);
    upsert(w.nodes, name, r.chance(0.1) ? null : () => nodeObject(r, name));
    return { kind: "Node", serviceOnly: false };
  }
  if (roll < 78) {
    const name = r.pick(ADVS);
    upsert(w.advertisements, name, r.chance(0.2) ? null : () => advertisementObject(r, name));
    return { kind: "BGPAdvertisement", serviceOnly: false };
  }
  if (roll < 84) {
    const name = r.pick(PEERS);
    upsert(w.peers, name, r.chance(0.2) ? null : () => peerObject(r, name));
    return { kind: "BGPPeer", serviceOnly: false };
  }
  if (roll < 88) {
    const name = r.pick(POOLS);
    upsert(w.pools, name, r.chance(0.2) ? null : () => poolObject(r, name));
    return { kind: "IPAddressPool", serviceOnly: false };
  }
  if (roll < 92) {
    w.communities = [communityObject(r)];
    return { kind: "Community", serviceOnly: false };
  }
  if (roll < 96) {
    // A relist: every object a new reference with its old resourceVersion.
    for (const key of Object.keys(w) as (keyof World)[]) (w[key] as unknown[]) = w[key].map((o) => structuredClone(o));
    return { kind: "relist", serviceOnly: true };
  }
  return { kind: "nothing", serviceOnly: true };
}

const snapshot = (w: World): BgpAnnouncementInput => ({
  nodes: [...w.nodes],
  services: [...w.services],
  endpointSlices: [...w.endpointSlices],
  pools: [...w.pools],
  peers: [...w.peers],
  advertisements: [...w.advertisements],
  communities: [...w.communities],
});

const SEEDS = Array.from({ length: 24 }, (_, i) => 1000 + i);
const STEPS = 150;
const OPTIONS: BgpAnnouncementOptions[] = [
  { ignoreExcludeLB: false, loadBalancerClass: null },
  { ignoreExcludeLB: true, loadBalancerClass: null },
  { ignoreExcludeLB: false, loadBalancerClass: "other" },
];

describe("IncrementalBgpPlanner equals the full recompute", () => {
  for (const seed of SEEDS) {
    const options = OPTIONS[seed % OPTIONS.length] as BgpAnnouncementOptions;
    it(`seed ${seed}, ${STEPS} random changes, ${JSON.stringify(options)}`, () => {
      const r = rng(seed);
      const world = initialWorld(r);
      const planner = new IncrementalBgpPlanner(options);
      let lastGood: LastGood = new Map();
      let announcing = 0;
      let incremental = 0;
      for (let step = 0; step <= STEPS; step++) {
        const what = step === 0 ? { kind: "start", serviceOnly: false } : change(r, world);
        const input = snapshot(world);
        const full = planWithLastGood(input, options, lastGood);
        lastGood = full.lastGood;
        const got = planner.plan(input);
        const where = `seed ${seed} step ${step} (${what.kind})`;
        assert.deepEqual(got.result, full.result, where);
        assert.deepEqual(got.effective, full.effective, where);
        assert.deepEqual(got.kept, full.kept, where);
        if (what.serviceOnly) {
          // A Service, its slices, a Node field the plan does not read, a relist, nothing: no full recompute, and
          // at most the one Service named by the change.
          assert.equal(planner.stats.full, null, `${where}: recomputed in full`);
          assert.ok(planner.stats.replanned <= 1, `${where}: replanned ${planner.stats.replanned}`);
        }
        if (step > 0 && planner.stats.replanned < planner.stats.services) incremental++;
        if (full.result.announcements.length > 0) announcing++;
      }
      // The sequence must have exercised something: plans that announce, and runs that replanned less than all.
      assert.ok(announcing > STEPS / 10, `only ${announcing} steps announced anything`);
      assert.ok(incremental > STEPS / 2, `only ${incremental} runs were incremental`);
    });
  }
});

describe("IncrementalBgpPlanner replans what a change affects", () => {
  const base = (): World => {
    version = 0;
    return {
      nodes: [
        { metadata: meta("n1", undefined, { rack: "x" }), status: { addresses: [{ type: "InternalIP", address: "10.0.0.1" }] } },
        { metadata: meta("n2", undefined, { rack: "y" }), status: { addresses: [{ type: "InternalIP", address: "10.0.0.2" }] } },
      ],
      pools: [
        { metadata: meta("a", NS), spec: { addresses: ["192.168.0.0/24"] } },
        { metadata: meta("b", NS), spec: { addresses: ["192.168.1.0/24"] } },
      ],
      peers: [{ metadata: meta("p1", NS), spec: { myASN: 64500, peerASN: 64501, peerAddress: "10.9.0.1" } }],
      advertisements: [
        { metadata: meta("for-a", NS), spec: { ipAddressPools: ["a"] } },
        { metadata: meta("for-b", NS), spec: { ipAddressPools: ["b"] } },
      ],
      communities: [],
      // 3 Services in pool a, 2 in pool b, each with a ready endpoint on n1.
      services: ["a0", "a1", "a2", "b0", "b1"].map((name, i) => ({
        metadata: meta(name, "default"),
        spec: { type: "LoadBalancer" },
        status: { loadBalancer: { ingress: [{ ip: `192.168.${name.startsWith("a") ? 0 : 1}.${i + 1}` }] } },
      })),
      endpointSlices: ["a0", "a1", "a2", "b0", "b1"].map((s) => ({ metadata: meta(`${s}-1`, "default", { "kubernetes.io/service-name": s }), endpoints: [{ conditions: { ready: true }, nodeName: "n1" }] })),
    };
  };
  const rows: { name: string; change: (w: World) => void; replanned: number; full: boolean }[] = [
    { name: "nothing", change: () => {}, replanned: 0, full: false },
    { name: "one Service's address", change: (w) => (w.services[1] = { ...(w.services[1] as ServiceObject), metadata: meta("a1", "default"), status: { loadBalancer: { ingress: [{ ip: "192.168.0.99" }] } } }), replanned: 1, full: false },
    { name: "one EndpointSlice", change: (w) => (w.endpointSlices[3] = { metadata: meta("b0-1", "default", { "kubernetes.io/service-name": "b0" }), endpoints: [] }), replanned: 1, full: false },
    { name: "a Node's addresses", change: (w) => (w.nodes[0] = { metadata: meta("n1", undefined, { rack: "x" }), status: { addresses: [{ type: "InternalIP", address: "10.0.0.9" }] } }), replanned: 0, full: false },
    { name: "the advertisement of pool b", change: (w) => (w.advertisements[1] = { metadata: meta("for-b", NS), spec: { ipAddressPools: ["b"], localPref: 200 } }), replanned: 2, full: false },
    { name: "an advertisement re-applied unchanged (a new object)", change: (w) => (w.advertisements[0] = structuredClone(w.advertisements[0]) as BGPAdvertisementObject), replanned: 0, full: false },
    { name: "a Community alias no advertisement uses", change: (w) => w.communities.push({ metadata: meta("aliases", NS), spec: { communities: [{ name: "x", value: "1:1" }] } }), replanned: 0, full: false },
    { name: "a Node's labels", change: (w) => (w.nodes[1] = { ...(w.nodes[1] as NodeObject), metadata: meta("n2", undefined, { rack: "x" }) }), replanned: 5, full: true },
    { name: "a BGPPeer's nodeSelectors", change: (w) => (w.peers[0] = { metadata: meta("p1", NS), spec: { peerAddress: "10.9.0.1", nodeSelectors: [{ matchLabels: { rack: "x" } }] } }), replanned: 5, full: true },
    { name: "a pool's addresses", change: (w) => (w.pools[1] = { metadata: meta("b", NS), spec: { addresses: ["192.168.1.0/25"] } }), replanned: 5, full: true },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const world = base();
      const planner = new IncrementalBgpPlanner({ ignoreExcludeLB: false, loadBalancerClass: null });
      planner.plan(snapshot(world));
      assert.equal(planner.stats.replanned, 5);
      row.change(world);
      const input = snapshot(world);
      const got = planner.plan(input);
      assert.deepEqual(got.result, planWithLastGood(input, { ignoreExcludeLB: false, loadBalancerClass: null }, new Map()).result);
      assert.equal(planner.stats.replanned, row.replanned);
      assert.equal(planner.stats.full !== null, row.full);
    });
  }
});
