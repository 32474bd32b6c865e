// The BGP announcement rules, one row per rule: the base cluster (fixtures/bgp-announce/cluster.yaml) plus the
// row's objects in, which node announces which prefix to which peer with which attributes out.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { planBgpAnnouncements } from "../src/bgp/announce.ts";
import { groupBgpObjects } from "../src/bgp/snapshot.ts";

const base = readFileSync(join(import.meta.dirname, "fixtures/bgp-announce/cluster.yaml"), "utf8");
const load = (extra: string) => groupBgpObjects(parseAllDocuments(`${base}\n---\n${extra}`).map((d) => d.toJS()).filter(Boolean));

const adv = (name: string, spec: string) => `apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: ${name}, namespace: metallb-system}\nspec: ${spec}\n---\n`;
/** [node, peer, prefix, communities, localPref?] per announcement, sorted, for compact rows. */
type Short = [string, string, string, string[], number?];

type Row = { name: string; objects: string; ignoreExcludeLB?: boolean; want: Short[]; notAnnounced?: string[]; configErrors?: string[] };

const rows: Row[] = [
  {
    name: "an advertisement naming no pool announces every pool from every eligible node to each node's peers",
    objects: adv("all", "{}"),
    want: [
      ["node1", "core", "192.168.10.5/32", []],
      ["node1", "core", "fd00:10::5/128", []],
      ["node1", "tor-a", "192.168.10.5/32", []],
      ["node1", "tor-a", "fd00:10::5/128", []],
      ["node3", "core", "192.168.10.5/32", []],
      ["node3", "core", "fd00:10::5/128", []],
    ],
  },
  {
    name: "the exclude-from-external-load-balancers label can be ignored (node2 has no endpoint, Cluster policy)",
    objects: adv("all", "{peers: [tor-a]}"),
    ignoreExcludeLB: true,
    want: [
      ["node1", "tor-a", "192.168.10.5/32", []],
      ["node1", "tor-a", "fd00:10::5/128", []],
      ["node2", "tor-a", "192.168.10.5/32", []],
      ["node2", "tor-a", "fd00:10::5/128", []],
    ],
  },
  {
    name: "aggregation, communities by value and alias, local-pref, nodeSelectors and peers",
    objects: adv("agg", "{ipAddressPools: [public], aggregationLength: 24, aggregationLengthV6: 120, localPref: 150, communities: [64500:1, no-export, vpn], nodeSelectors: [{matchLabels: {rack: b}}], peers: [core]}"),
    want: [
      ["node3", "core", "192.168.10.0/24", ["64500:1", "65535:65281", "large:64500:7:7"], 150],
      ["node3", "core", "fd00:10::/120", ["64500:1", "65535:65281", "large:64500:7:7"], 150],
    ],
  },
  {
    name: "two advertisements for the same prefix merge their communities; the higher local-pref wins",
    objects: adv("a", "{ipAddressPoolSelectors: [{matchLabels: {exposure: public}}], communities: [64500:1], localPref: 100, peers: [core], nodeSelectors: [{matchLabels: {rack: b}}]}") + adv("b", "{ipAddressPools: [public], communities: [64500:2], localPref: 200, peers: [core], nodeSelectors: [{matchLabels: {rack: b}}]}"),
    want: [
      ["node3", "core", "192.168.10.5/32", ["64500:1", "64500:2"], 200],
      ["node3", "core", "fd00:10::5/128", ["64500:1", "64500:2"], 200],
    ],
  },
  {
    name: "externalTrafficPolicy Local: only nodes with a ready endpoint",
    objects: `${adv("all", "{peers: [core]}")}apiVersion: v1
kind: Service
metadata: {name: local, namespace: default}
spec: {type: LoadBalancer, externalTrafficPolicy: Local}
status: {loadBalancer: {ingress: [{ip: 192.168.10.6}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: local-1, namespace: default, labels: {kubernetes.io/service-name: local}}
endpoints:
  - {conditions: {ready: true}, nodeName: node3}
  - {conditions: {ready: false}, nodeName: node1}`,
    want: [
      ["node1", "core", "192.168.10.5/32", []],
      ["node1", "core", "fd00:10::5/128", []],
      ["node3", "core", "192.168.10.5/32", []],
      ["node3", "core", "192.168.10.6/32", []],
      ["node3", "core", "fd00:10::5/128", []],
    ],
  },
  {
    name: "a node whose network is unavailable announces nothing",
    objects: `${adv("all", "{peers: [core]}")}apiVersion: v1
kind: Node
metadata: {name: node4, labels: {rack: b}}
status: {conditions: [{type: NetworkUnavailable, status: "True"}]}`,
    want: [
      ["node1", "core", "192.168.10.5/32", []],
      ["node1", "core", "fd00:10::5/128", []],
      ["node3", "core", "192.168.10.5/32", []],
      ["node3", "core", "fd00:10::5/128", []],
    ],
  },
  {
    name: "no advertisement for the pool, no ready endpoint, no pool: nothing, with the reason",
    objects: `${adv("small-only", "{ipAddressPools: [small]}")}apiVersion: v1
kind: Service
metadata: {name: idle, namespace: default}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 192.168.20.3}]}}
---
apiVersion: v1
kind: Service
metadata: {name: stray, namespace: default}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 10.99.0.1}]}}`,
    want: [],
    notAnnounced: [
      "default/web 192.168.10.5: no BGPAdvertisement selects pool public",
      "default/web fd00:10::5: no BGPAdvertisement selects pool public",
      "default/idle 192.168.20.3: no ready endpoint",
      "default/stray 10.99.0.1: in no IPAddressPool",
    ],
  },
  {
    name: "an aggregation wider than a pool's block, an unknown community alias: the advertisement is refused",
    objects: adv("too-wide", "{ipAddressPools: [small], aggregationLength: 24}") + adv("bad-community", "{communities: [nonesuch]}"),
    want: [],
    notAnnounced: ["default/web 192.168.10.5: no BGPAdvertisement selects pool public", "default/web fd00:10::5: no BGPAdvertisement selects pool public"],
    configErrors: [
      "BGPAdvertisement bad-community: spec.communities[0]: \"nonesuch\" is neither a community nor the name of a Community alias",
      "BGPAdvertisement too-wide: aggregation length 24 is shorter than /28, a block of pool small: it would announce addresses outside the pool",
    ],
  },
];

const community = (n: number) => `${Math.floor(n / 65536)}:${n % 65536}`;

describe("planBgpAnnouncements", () => {
  for (const row of rows) {
    it(row.name, () => {
      const result = planBgpAnnouncements(load(row.objects), { ignoreExcludeLB: row.ignoreExcludeLB ?? false, loadBalancerClass: null });
      const short = result.announcements
        .map((a): Short => {
          const s: Short = [a.node, a.peer, a.prefix, [...a.communities.map(community), ...a.largeCommunities.map((l) => `large:${l.join(":")}`)]];
          if (a.localPref !== undefined) s.push(a.localPref);
          return s;
        })
        .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
      assert.deepEqual(short, row.want);
      assert.deepEqual(result.notAnnounced.map((n) => `${n.namespace}/${n.name} ${n.ip}: ${n.reason}`), row.notAnnounced ?? []);
      assert.deepEqual(result.configErrors.map((e) => `${e.kind} ${e.name}: ${e.message}`).sort(), row.configErrors ?? []);
    });
  }
});
