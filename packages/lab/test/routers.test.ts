// The lab routers' pure parts: what each daemon's configuration says for typed options, what it refuses, and
// which next hops the GoBGP stand-in installs for a prefix's paths.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FrrConfigError, multipathNextHops, renderBirdConfig, renderFrrConfig, renderGobgpConfig, RouterConfigError } from "../src/index.ts";

const base = { asn: 64501, routerId: "10.251.1.250", gracefulRestart: true };
const bfd = { receiveMs: 200, transmitMs: 200, multiplier: 3 };

describe("router configurations", () => {
  it("BIRD: a protocol per neighbor with its password and BFD, equal paths merged into the kernel", () => {
    const text = renderBirdConfig({ ...base, neighbors: [{ address: "10.251.1.11", asn: 64500, password: "pw", bfd }, { address: "fd00::b", asn: 64500 }] }, "/tmp/x/bird.log");
    for (const line of ['neighbor 10.251.1.11 as 64500;', 'password "pw";', "bfd on;", "neighbor fd00::b as 64500;", "merge paths on;", "min rx interval 200 ms; min tx interval 200 ms; idle tx interval 1000 ms; multiplier 3;", "graceful restart on;"]) {
      assert.ok(text.includes(line), `missing: ${line}`);
    }
    assert.equal(text.match(/^protocol bgp /gm)?.length, 2);
  });

  it("GoBGP: neighbors with auth-password, multiple paths", () => {
    const text = renderGobgpConfig({ ...base, neighbors: [{ address: "10.251.1.11", asn: 64500, password: "pw" }] });
    for (const line of ['neighbor-address = "10.251.1.11"', 'auth-password = "pw"', "[global.use-multiple-paths.config]", 'afi-safi-name = "ipv6-unicast"']) assert.ok(text.includes(line), `missing: ${line}`);
  });

  it("FRR in a node's place: its hostname, the prefixes it originates in their families, no import check", () => {
    const { bgpd, zebra } = renderFrrConfig({ ...base, gracefulRestart: false, hostname: "node1", neighbors: [{ address: "10.251.1.250", asn: 64501, bfd }], networks: ["10.253.1.10/32", "fd00::10/128"] });
    for (const line of ["hostname node1", " no bgp network import-check", " bgp graceful-restart-disable", " neighbor 10.251.1.250 bfd profile n0"]) assert.ok(bgpd.includes(line), `missing: ${line}`);
    assert.match(bgpd, /address-family ipv4 unicast\n(?: .*\n)*? {2}network 10\.253\.1\.10\/32\n/);
    assert.match(bgpd, /address-family ipv6 unicast\n(?: .*\n)*? {2}network fd00::10\/128\n/);
    assert.ok(zebra.startsWith("hostname node1\n"));
    // Without networks, the router's configuration as before.
    const router = renderFrrConfig({ ...base, neighbors: [] }).bgpd;
    assert.ok(router.includes("hostname router") && !router.includes("network") && !router.includes("import-check"));
  });

  for (const [what, options] of [
    ["a network that is no prefix", { networks: ["10.0.0.1"] }],
    ["a network with a length too long for its family", { networks: ["10.0.0.1/33"] }],
    ["a network with text after it", { networks: ["10.0.0.0/24 route-map x"] }],
    ["a hostname that is no DNS label", { hostname: "node 1" }],
  ] as const) {
    it(`FRR refuses ${what}`, () => assert.throws(() => renderFrrConfig({ ...base, neighbors: [], ...options }), FrrConfigError));
  }

  const refused: [string, () => unknown][] = [
    ["a password with a quote", () => renderBirdConfig({ ...base, neighbors: [{ address: "10.0.0.1", asn: 1, password: 'a";b' }] }, "/l")],
    ["a password with a space", () => renderGobgpConfig({ ...base, neighbors: [{ address: "10.0.0.1", asn: 1, password: "a b" }] })],
    ["a neighbor that is no address", () => renderBirdConfig({ ...base, neighbors: [{ address: "10.0.0.1; x", asn: 1 }] }, "/l")],
    ["an AS number out of range", () => renderGobgpConfig({ ...base, neighbors: [{ address: "10.0.0.1", asn: 2 ** 32 }] })],
    ["BFD with GoBGP", () => renderGobgpConfig({ ...base, neighbors: [{ address: "10.0.0.1", asn: 1, bfd }] })],
    ["BIRD BFD neighbors with different timers", () => renderBirdConfig({ ...base, neighbors: [{ address: "10.0.0.1", asn: 1, bfd }, { address: "10.0.0.2", asn: 1, bfd: { ...bfd, multiplier: 5 } }] }, "/l")],
  ];
  for (const [what, render] of refused) it(`refuses ${what}`, () => assert.throws(render, RouterConfigError));
});

describe("multipathNextHops (GoBGP's RIB → kernel)", () => {
  const path = (hop: string, o: { best?: boolean; asns?: number[]; localPref?: number; med?: number; v6?: boolean } = {}) => ({
    best: o.best === true,
    attrs: [
      { type: 1, value: 0 },
      { type: 2, as_paths: [{ asns: o.asns ?? [64500] }] },
      o.v6 ? { type: 14, nexthop: hop } : { type: 3, nexthop: hop },
      ...(o.localPref !== undefined ? [{ type: 5, value: o.localPref }] : []),
      ...(o.med !== undefined ? [{ type: 4, metric: o.med }] : []),
    ],
  });
  const cases: [string, ReturnType<typeof path>[], string[]][] = [
    ["no paths", [], []],
    ["two equal paths: both", [path("10.0.0.12", { best: true }), path("10.0.0.11")], ["10.0.0.11", "10.0.0.12"]],
    ["a longer AS path is not used", [path("10.0.0.11", { best: true }), path("10.0.0.12", { asns: [64500, 64502] })], ["10.0.0.11"]],
    ["a lower local-pref is not used", [path("10.0.0.11", { best: true, localPref: 200 }), path("10.0.0.12", { localPref: 100 })], ["10.0.0.11"]],
    ["a different MED is not used", [path("10.0.0.11", { best: true, med: 0 }), path("10.0.0.12", { med: 10 })], ["10.0.0.11"]],
    ["IPv6 next hops from MP_REACH_NLRI", [path("fd00::b", { best: true, v6: true }), path("fd00::c", { v6: true })], ["fd00::b", "fd00::c"]],
  ];
  for (const [what, paths, expected] of cases) it(what, () => assert.deepEqual(multipathNextHops(paths), expected));
});
