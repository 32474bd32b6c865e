// BGPPeer → BgpSession options, one row per field rule (MetalLB v0.16's meaning and validation).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDuration, peerSession } from "../src/bgp/peers.ts";
import type { BGPPeerObject } from "../src/bgp/objects.ts";

const node = { name: "node1", labels: {}, addresses: ["fd00::11", "10.0.0.11"] };
const secrets = new Map([
  ["metallb-system/bgp-auth", { type: "kubernetes.io/basic-auth", data: { password: "from-secret" } }],
  ["metallb-system/opaque", { type: "Opaque", data: { password: "x" } }],
]);
const peer = (spec: NonNullable<BGPPeerObject["spec"]>): BGPPeerObject => ({ metadata: { name: "p", namespace: "metallb-system" }, spec });
const base = { myASN: 64500, peerASN: 64501, peerAddress: "10.0.0.1" };
const profiles = [
  { metadata: { name: "fast" }, spec: { receiveInterval: 100, transmitInterval: 50, detectMultiplier: 5, passiveMode: true } },
  { metadata: { name: "default" } },
  { metadata: { name: "echo" }, spec: { echoMode: true } },
];

describe("peerSession", () => {
  it("defaults: port 179, hold 90 s, the node's IPv4 address as router ID, the peer's family, TTL 1 for eBGP", () => {
    assert.deepEqual(peerSession(peer(base), node, secrets, "metallb-system"), {
      options: { peerAddress: "10.0.0.1", peerPort: 179, localAsn: 64500, peerAsn: 64501, routerId: "10.0.0.11", holdTime: 90, connectRetrySeconds: 5, families: [{ afi: 1, safi: 1 }] },
      ttl: 1,
    });
  });

  it("every supported field", () => {
    const result = peerSession(
      peer({ ...base, peerASN: undefined, dynamicASN: "internal", peerAddress: "fd00::1", peerPort: 1179, holdTime: "9s", keepaliveTime: "3s", connectTime: "2s", routerID: "1.2.3.4", sourceAddress: "fd00::11", password: "pw", ebgpMultiHop: true, enableGracefulRestart: true, dualStackAddressFamily: true }),
      node,
      secrets,
      "metallb-system",
    );
    assert.deepEqual(result, {
      options: {
        peerAddress: "fd00::1",
        peerPort: 1179,
        localAsn: 64500,
        peerAsn: "internal",
        routerId: "1.2.3.4",
        holdTime: 9,
        keepaliveTime: 3,
        connectRetrySeconds: 2,
        sourceAddress: "fd00::11",
        gracefulRestart: { restartTime: 120, restarting: false },
        families: [{ afi: 1, safi: 1 }, { afi: 2, safi: 1 }],
      },
      password: "pw",
      ttl: 0,
    });
  });

  it("ebgpMultiHop raises the TTL to 255", () => {
    assert.equal((peerSession(peer({ ...base, ebgpMultiHop: true }), node, secrets, "metallb-system") as { ttl: number }).ttl, 255);
  });

  it("reads passwordSecret (basic-auth, key password) from the speaker's namespace by default", () => {
    const result = peerSession(peer({ ...base, passwordSecret: { name: "bgp-auth" } }), node, secrets, "metallb-system");
    assert.equal((result as { password: string }).password, "from-secret");
  });

  for (const [name, spec, error] of [
    ["no address", { ...base, peerAddress: "router" }, /peerAddress/],
    ["peerASN and dynamicASN", { ...base, dynamicASN: "external" }, /exactly one/],
    ["neither peerASN nor dynamicASN", { myASN: 1, peerAddress: "10.0.0.1" }, /exactly one/],
    ["a hold time of 2 s", { ...base, holdTime: "2s" }, /holdTime/],
    ["a hold time that is not a duration", { ...base, holdTime: "soon" }, /holdTime/],
    ["a keepalive longer than the hold time", { ...base, holdTime: "30s", keepaliveTime: "40s" }, /keepaliveTime/],
    ["password and passwordSecret", { ...base, password: "a", passwordSecret: { name: "bgp-auth" } }, /exclusive/],
    ["a missing Secret", { ...base, passwordSecret: { name: "nope" } }, /not found/],
    ["a Secret not of type basic-auth", { ...base, passwordSecret: { name: "opaque" } }, /basic-auth/],
    ["an unnumbered session", { ...base, interface: "eth1" }, /not supported/],
    ["a BFD profile that does not exist", { ...base, bfdProfile: "missing" }, /BFDProfile missing not found/],
    ["a BFD profile in echo mode", { ...base, bfdProfile: "echo" }, /echo mode/],
    ["BFD with ebgpMultiHop", { ...base, bfdProfile: "fast", ebgpMultiHop: true }, /single-hop/],
    ["a passwordSecret in another namespace", { ...base, passwordSecret: { name: "bgp-auth", namespace: "default" } }, /speaker's namespace/],
  ] as [string, NonNullable<BGPPeerObject["spec"]>, RegExp][]) {
    it(`refuses ${name}`, () => {
      const result = peerSession(peer(spec), node, secrets, "metallb-system", profiles);
      assert.ok("error" in result && error.test(result.error), JSON.stringify(result));
    });
  }

  it("a BFD profile: its intervals, multiplier and passive mode, run from the node's address of the peer's family", () => {
    const fast = peerSession(peer({ ...base, bfdProfile: "fast" }), node, secrets, "metallb-system", profiles);
    assert.deepEqual((fast as { bfd: unknown }).bfd, { localAddress: "10.0.0.11", desiredMinTxMs: 50, requiredMinRxMs: 100, detectMultiplier: 5, passive: true });
    const defaults = peerSession(peer({ ...base, peerAddress: "fd00::1", bfdProfile: "default" }), node, secrets, "metallb-system", profiles);
    assert.deepEqual((defaults as { bfd: unknown }).bfd, { localAddress: "fd00::11", desiredMinTxMs: 300, requiredMinRxMs: 300, detectMultiplier: 3, passive: false });
    const sourced = peerSession(peer({ ...base, bfdProfile: "default", sourceAddress: "10.0.0.99" }), node, secrets, "metallb-system", profiles);
    assert.equal((sourced as { bfd: { localAddress: string } }).bfd.localAddress, "10.0.0.99");
  });

  it("refuses to guess a router ID on an IPv6-only node", () => {
    const result = peerSession(peer(base), { ...node, addresses: ["fd00::11"] }, secrets, "metallb-system");
    assert.ok("error" in result && /routerID/.test(result.error));
  });
});

describe("parseDuration (Go's notation)", () => {
  for (const [text, seconds] of [["90s", 90], ["1m30s", 90], ["3m", 180], ["1h", 3600], ["500ms", 0.5], ["1.5s", 1.5], ["", undefined], ["90", undefined], ["s", undefined]] as const) {
    it(`${JSON.stringify(text)} → ${seconds}`, () => assert.equal(parseDuration(text), seconds));
  }
});
