import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { judgeInterface, selectInterfaces } from "../src/announcer/interfaces.ts";
import type { LinkFacts } from "../src/l2/packet-socket.ts";

const UP = 0x1;
const BROADCAST = 0x2;
const LOOPBACK = 0x8;
const NOARP = 0x80;
const SLAVE = 0x800;

const link = (name: string, over: Partial<LinkFacts> = {}): LinkFacts => ({
  index: 2,
  name,
  flags: UP | BROADCAST,
  hardwareType: 1,
  mac: "02:00:00:00:00:01",
  masterIndex: 0,
  kind: null,
  ...over,
});

describe("judgeInterface", () => {
  const cases: Array<[string, LinkFacts, boolean, string | null]> = [
    ["a plain NIC", link("eth0"), false, null],
    ["a bond master", link("bond0", { kind: "bond" }), false, null],
    ["a bridge", link("br0", { kind: "bridge" }), false, null],
    ["a down NIC", link("eth1", { flags: BROADCAST }), false, "down"],
    ["loopback", link("lo", { flags: UP | LOOPBACK, hardwareType: 772 }), false, "loopback"],
    ["a point-to-point tunnel", link("wg0", { flags: UP, hardwareType: 65534, mac: null }), false, "not Ethernet"],
    ["no broadcast", link("eth2", { flags: UP }), false, "not broadcast-capable"],
    ["NOARP", link("eth3", { flags: UP | BROADCAST | NOARP }), false, "NOARP"],
    ["a bridge port", link("eth4", { masterIndex: 7 }), false, "bridge or bond port"],
    ["a bond slave", link("eth5", { flags: UP | BROADCAST | SLAVE, masterIndex: 8 }), false, "bridge or bond port"],
    ["docker0", link("docker0", { kind: "bridge" }), false, "excluded by name"],
    ["a veth", link("veth1234", { kind: "veth" }), false, "excluded by name"],
    ["calico", link("cali9f8e", { kind: "veth" }), false, "excluded by name"],
    ["cni0", link("cni0", { kind: "bridge" }), false, "excluded by name"],
    ["kube-ipvs0 even when named (NOARP)", link("kube-ipvs0", { flags: UP | BROADCAST | NOARP }), true, "NOARP"],
    ["a named veth", link("veth1234", { kind: "veth" }), true, null],
    ["a named bridge port", link("eth4", { masterIndex: 7 }), true, "bridge or bond port"],
  ];
  for (const [what, facts, named, reason] of cases) {
    it(`${what}: ${reason ?? "eligible"}`, () => {
      const verdict = judgeInterface(facts, named);
      assert.deepEqual(verdict, reason === null ? { name: facts.name, eligible: true } : { name: facts.name, eligible: false, reason });
    });
  }
});

describe("selectInterfaces", () => {
  const links = [link("eth0", { index: 2 }), link("eth1", { index: 3 }), link("docker0", { index: 4 }), link("veth9", { index: 5 })];
  it("all: every eligible interface", () => {
    assert.deepEqual(
      selectInterfaces(links, "all").eligible.map((l) => l.name),
      ["eth0", "eth1"],
    );
  });
  it("named: only those, exclusions lifted, missing ones reported", () => {
    const { eligible, verdicts } = selectInterfaces(links, ["eth1", "veth9", "eth9"]);
    assert.deepEqual(
      eligible.map((l) => l.name),
      ["eth1", "veth9"],
    );
    assert.deepEqual(
      verdicts.find((v) => v.name === "eth9"),
      { name: "eth9", eligible: false, reason: "no such interface" },
    );
  });
});
