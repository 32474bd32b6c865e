// Membership over real UDP sockets on loopback (127.0.0.0/8 gives each member its own address).
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, describe, it } from "node:test";
import { createLogger } from "@bollard/core";
import { Registry } from "prom-client";
import { type Membership, MembershipKeyError, startMembership } from "../src/membership/membership.ts";
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat, judgeHeartbeat, liveMembers } from "../src/membership/protocol.ts";

const key = Buffer.from("0123456789abcdef0123456789abcdef");
const logger = createLogger({ level: "warn", name: "membership-test" });

describe("heartbeat protocol", () => {
  const heartbeat: Heartbeat = { node: "node2", incarnation: 1000, seq: 7, sentAt: 50_000, state: "ready" };

  it("round-trips a signed heartbeat", () => {
    assert.deepEqual(decodeHeartbeat(encodeHeartbeat(heartbeat, key), key), { ok: true, heartbeat });
  });

  it("rejects another key, a flipped bit, a truncated packet and junk", () => {
    const packet = encodeHeartbeat(heartbeat, key);
    assert.deepEqual(decodeHeartbeat(packet, Buffer.from("another key, 16+ bytes long")), { ok: false, reason: "bad-signature" });
    const flipped = Buffer.from(packet);
    flipped[10] = (flipped[10] as number) ^ 1;
    assert.deepEqual(decodeHeartbeat(flipped, key), { ok: false, reason: "bad-signature" });
    assert.deepEqual(decodeHeartbeat(packet.subarray(0, 20), key), { ok: false, reason: "malformed" });
    assert.deepEqual(decodeHeartbeat(Buffer.alloc(100, 7), key), { ok: false, reason: "malformed" });
  });

  it("rejects a signed body that is not a heartbeat", () => {
    const forged = encodeHeartbeat({ ...heartbeat, state: "sleeping" } as unknown as Heartbeat, key);
    assert.deepEqual(decodeHeartbeat(forged, key), { ok: false, reason: "malformed" });
  });

  const context = { self: "node1", known: new Set(["node2", "node3"]), wallNow: 50_100, maxSkewMs: 5000 };
  const previous = { incarnation: 1000, seq: 7, state: "ready" as const, heardAt: 0 };
  const cases: Array<[string, Partial<Heartbeat>, typeof previous | undefined, string]> = [
    ["first heartbeat of a peer", {}, undefined, "accept"],
    ["next sequence number", { seq: 8 }, previous, "accept"],
    ["same sequence number again", { seq: 7 }, previous, "replay"],
    ["older sequence number", { seq: 3 }, previous, "replay"],
    ["a restarted peer (new incarnation, seq 1)", { incarnation: 2000, seq: 1 }, previous, "accept"],
    ["an old incarnation", { incarnation: 999, seq: 100 }, previous, "replay"],
    ["sent 6 s ago", { sentAt: 44_000 }, undefined, "stale"],
    ["sent 6 s in the future", { sentAt: 56_200 }, undefined, "stale"],
    ["our own name", { node: "node1" }, undefined, "self"],
    ["a node without a Node object", { node: "intruder" }, undefined, "unknown-node"],
  ];
  for (const [what, change, prev, verdict] of cases) {
    it(`${what}: ${verdict}`, () => {
      assert.equal(judgeHeartbeat({ ...heartbeat, ...change }, { ...context, previous: prev }), verdict);
    });
  }

  it("counts ready peers heard within the dead timeout, and itself once ready", () => {
    const records = new Map([
      ["fresh", { incarnation: 1, seq: 1, state: "ready" as const, heardAt: 1000 }],
      ["silent", { incarnation: 1, seq: 1, state: "ready" as const, heardAt: 300 }],
      ["joining", { incarnation: 1, seq: 1, state: "joining" as const, heardAt: 1000 }],
      ["leaving", { incarnation: 1, seq: 1, state: "leaving" as const, heardAt: 1000 }],
    ]);
    assert.deepEqual([...liveMembers(records, { self: "me", selfState: "ready", now: 1100, deadAfterMs: 600 })].sort(), ["fresh", "me"]);
    assert.deepEqual([...liveMembers(records, { self: "me", selfState: "joining", now: 1100, deadAfterMs: 600 })], ["fresh"]);
  });
});

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sorted = (set: ReadonlySet<string>) => [...set].sort().join(",");

describe("membership over UDP", () => {
  const port = 20_000 + Math.floor(Math.random() * 40_000);
  const addresses = new Map([
    ["a", "127.0.0.1"],
    ["b", "127.0.0.2"],
    ["c", "127.0.0.3"],
    ["d", "127.0.0.4"],
  ]);
  const members: Membership[] = [];
  const registries = new Map<string, Registry>();
  after(async () => {
    await Promise.all(members.map((m) => m.close()));
  });

  const start = async (node: string) => {
    const registry = new Registry();
    registries.set(node, registry);
    const member = await startMembership({ nodeName: node, key, port, bindAddresses: [addresses.get(node) as string], logger, registry, onChange() {} });
    member.setPeers(addresses);
    members.push(member);
    return member;
  };
  const resultCount = async (node: string, result: string) => {
    const metric = await (registries.get(node) as Registry).getSingleMetric("bollard_speaker_membership_messages_received_total")?.get();
    return metric?.values.find((v) => v.labels.result === result)?.value ?? 0;
  };

  it("refuses a short key", async () => {
    await assert.rejects(
      startMembership({ nodeName: "x", key: Buffer.from("short"), port, logger, registry: new Registry(), onChange() {} }),
      MembershipKeyError,
    );
  });

  it("members find each other, drop a leaving one, and a dead one after the timeout", async () => {
    const [a, b] = [await start("a"), await start("b")];
    const c = await start("c");
    await waitFor("a, b and c to see each other", () => [a, b, c].every((m) => sorted(m.live()) === "a,b,c"));

    await c.close();
    members.splice(members.indexOf(c), 1);
    await waitFor("c to be dropped after saying leaving", () => sorted(a.live()) === "a,b" && sorted(b.live()) === "a,b");

    // d: a real peer speaking the protocol by hand, which then falls silent (a crashed node).
    const d = createSocket("udp4");
    await new Promise<void>((resolve) => d.bind(0, "127.0.0.4", resolve));
    let seq = 0;
    const beat = () => {
      seq += 1;
      const packet = encodeHeartbeat({ node: "d", incarnation: 1, seq, sentAt: Date.now(), state: "ready" }, key);
      for (const address of ["127.0.0.1", "127.0.0.2"]) d.send(packet, port, address);
      return packet;
    };
    const timer = setInterval(beat, 100);
    try {
      await waitFor("d to be live", () => sorted(a.live()) === "a,b,d");
    } finally {
      clearInterval(timer);
    }
    // A replay of d's last packet must not keep it alive.
    const last = encodeHeartbeat({ node: "d", incarnation: 1, seq, sentAt: Date.now(), state: "ready" }, key);
    const replays = setInterval(() => d.send(last, port, "127.0.0.1"), 100);
    try {
      await waitFor("silent d to be dead", () => sorted(a.live()) === "a,b");
    } finally {
      clearInterval(replays);
      d.close();
    }
    assert.ok((await resultCount("a", "replay")) > 0, "replays were counted");
  });

  it("a forged heartbeat (wrong key) never makes a node live", async () => {
    const a = members.find((m) => m.live().has("a")) as Membership;
    const forger = createSocket("udp4");
    await new Promise<void>((resolve) => forger.bind(0, "127.0.0.4", resolve));
    try {
      for (let seq = 1; seq <= 10; seq++) {
        const packet = encodeHeartbeat({ node: "d", incarnation: 5, seq, sentAt: Date.now(), state: "ready" }, Buffer.from("not the shared secret, but long"));
        forger.send(packet, port, "127.0.0.1");
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      await waitFor("the forgeries to be counted", () => false === a.live().has("d"));
      assert.ok((await resultCount("a", "bad-signature")) >= 1);
      assert.equal(a.live().has("d"), false);
    } finally {
      forger.close();
    }
  });

  it("a starting member does not count itself until it has heard the others", async () => {
    const c = await start("c");
    assert.equal(c.live().has("c"), false, "joining: not live yet");
    await waitFor("c to join", () => sorted(c.live()) === "a,b,c");
  });
});
