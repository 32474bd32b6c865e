// planWithLastGood: an invalid BGPAdvertisement, Community or BGPPeer keeps its last valid version in effect
// (none if it never had one), the error is still reported, and valid objects are untouched.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BgpAnnouncementInput } from "../src/bgp/announce.ts";
import { type LastGood, planWithLastGood } from "../src/bgp/last-good.ts";

const NS = "metallb-system";
const base = (): BgpAnnouncementInput => ({
  nodes: [{ metadata: { name: "node1", labels: {} } }],
  services: [
    {
      metadata: { name: "web", namespace: "default" },
      spec: { type: "LoadBalancer" },
      status: { loadBalancer: { ingress: [{ ip: "192.168.10.5" }] } },
    },
  ],
  endpointSlices: [{ metadata: { name: "web-1", namespace: "default", labels: { "kubernetes.io/service-name": "web" } }, endpoints: [{ conditions: { ready: true }, nodeName: "node1" }] }],
  pools: [{ metadata: { name: "public", namespace: NS }, spec: { addresses: ["192.168.10.0/24"] } }],
  peers: [{ metadata: { name: "tor", namespace: NS }, spec: { myASN: 64500, peerASN: 64501, peerAddress: "10.0.0.1" } }],
  advertisements: [{ metadata: { name: "adv", namespace: NS }, spec: { communities: ["no-export"], localPref: 50 } }],
  communities: [{ metadata: { name: "aliases", namespace: NS }, spec: { communities: [{ name: "no-export", value: "65535:65281" }] } }],
});
const options = { ignoreExcludeLB: false, loadBalancerClass: null };
const summary = (r: ReturnType<typeof planWithLastGood>) =>
  r.result.announcements.map((a) => `${a.peer} ${a.prefix} lp=${a.localPref ?? "-"} c=${a.communities.join(",")}`);

describe("planWithLastGood", () => {
  const good = planWithLastGood(base(), options, new Map());

  it("valid objects: every object is remembered and nothing is kept back", () => {
    assert.deepEqual(summary(good), ["tor 192.168.10.5/32 lp=50 c=4294967041"]);
    assert.deepEqual(good.kept, []);
    assert.equal(good.result.configErrors.length, 0);
    assert.deepEqual([...good.lastGood.keys()].sort(), [`BGPAdvertisement/${NS}/adv`, `BGPPeer/${NS}/tor`, `Community/${NS}/aliases`, `IPAddressPool/${NS}/public`]);
  });

  const rows: [string, (i: BgpAnnouncementInput) => void, RegExp][] = [
    ["an advertisement naming an unknown community", (i) => ((i.advertisements[0] as { spec: { communities: string[] } }).spec.communities = ["nope"]), /BGPAdvertisement adv/],
    ["an advertisement with aggregationLength 40", (i) => ((i.advertisements[0] as { spec: { aggregationLength?: number } }).spec.aggregationLength = 40), /BGPAdvertisement adv/],
    ["a Community alias whose value is not a community", (i) => ((i.communities[0] as { spec: { communities: { value: string }[] } }).spec.communities[0] as { value: string }).value = "x:y", /Community aliases/],
    ["a BGPPeer with a bad node selector", (i) => ((i.peers[0] as { spec: Record<string, unknown> }).spec.nodeSelectors = [{ matchExpressions: [{ key: "a", operator: "Sideways" }] }]), /BGPPeer tor/],
  ];
  for (const [name, breakIt, error] of rows) {
    it(`${name}: the last valid version stays in effect and the error is reported`, () => {
      const input = base();
      breakIt(input);
      const r = planWithLastGood(input, options, good.lastGood);
      assert.deepEqual(summary(r), summary(good));
      assert.ok(r.result.configErrors.some((e) => error.test(`${e.kind} ${e.name}`)), JSON.stringify(r.result.configErrors));
      // The broken object, and with a broken alias also the advertisements that name it.
      assert.ok(r.kept.some((k) => error.test(k.replace(/^(\w+)\/[^/]*\/(.*)$/, "$1 $2"))), r.kept.join());
      // And it stays remembered as the old version, not the broken one.
      const again = planWithLastGood(input, options, r.lastGood);
      assert.deepEqual(summary(again), summary(good));
    });
    it(`${name}, never valid before: the object is left out`, () => {
      const input = base();
      breakIt(input);
      const r = planWithLastGood(input, options, new Map() as LastGood);
      assert.deepEqual(r.kept, []);
      assert.ok(r.result.configErrors.length > 0);
    });
  }

  it("a deleted object is forgotten", () => {
    const input = base();
    input.advertisements = [];
    const r = planWithLastGood(input, options, good.lastGood);
    assert.deepEqual(r.result.announcements, []);
    assert.ok(!r.lastGood.has(`BGPAdvertisement/${NS}/adv`));
  });
});
