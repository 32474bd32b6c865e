// Membership over real UDP sockets on loopback (127.0.0.0/8 gives each member its own address).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { createLogger } from "@bollard/core";
import { Registry } from "prom-client";
import { type Membership, MembershipKeyError, startMembership } from "../src/membership/membership.ts";
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat, judgeHeartbeat, liveMembers, mayBecomeReady, recordHeartbeat, viewConverged } from "../src/membership/protocol.ts";

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
  const previous = { incarnation: 1000, seq: 7, state: "ready" as const, heardAt: 0, stateSince: 0 };
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

  const record = (state: "joining" | "ready" | "leaving", heardAt: number, stateSince = heardAt) => ({ incarnation: 1, seq: 1, state, heardAt, stateSince });

  it("counts ready peers heard within the dead timeout, and itself once converged", () => {
    const records = new Map([
      ["fresh", record("ready", 1000)],
      ["silent", record("ready", 300)],
      ["joining", record("joining", 1000)],
      ["leaving", record("leaving", 1000)],
    ]);
    assert.deepEqual([...liveMembers(records, { self: "me", selfConverged: true, now: 1100, deadAfterMs: 600 })].sort(), ["fresh", "me"]);
    assert.deepEqual([...liveMembers(records, { self: "me", selfConverged: false, now: 1100, deadAfterMs: 600 })], ["fresh"]);
  });

  it("keeps the time a peer entered its state across repeats, and resets it on a change or restart", () => {
    const first = recordHeartbeat(undefined, { ...heartbeat, state: "joining" }, 100);
    assert.equal(first.stateSince, 100);
    const again = recordHeartbeat(first, { ...heartbeat, seq: 8, state: "joining" }, 250);
    assert.deepEqual([again.heardAt, again.stateSince], [250, 100]);
    assert.equal(recordHeartbeat(again, { ...heartbeat, seq: 9, state: "ready" }, 400).stateSince, 400);
    assert.equal(recordHeartbeat(again, { ...heartbeat, incarnation: 2000, seq: 1, state: "joining" }, 500).stateSince, 500);
  });

  const readyCases: Array<[string, string[], { graceOver: boolean; silentPeersWaitOver: boolean }, boolean]> = [
    // [what, peers heard, timers, may say ready]
    ["every peer heard, grace not over", ["b", "c"], { graceOver: false, silentPeersWaitOver: false }, false],
    ["every peer heard, grace over", ["b", "c"], { graceOver: true, silentPeersWaitOver: false }, true],
    ["a peer never heard, within the wait", ["c"], { graceOver: true, silentPeersWaitOver: false }, false],
    ["a peer never heard, after the wait", ["c"], { graceOver: true, silentPeersWaitOver: true }, true],
  ];
  for (const [what, heard, timers, ready] of readyCases) {
    it(`may become ready with ${what}: ${ready}`, () => {
      const records = new Map(heard.map((n) => [n, record("ready", 1000)] as const));
      assert.equal(mayBecomeReady(records, { peers: ["b", "c"], ...timers }), ready);
    });
  }

  const convergedCases: Array<[string, Array<[string, ReturnType<typeof record>]>, boolean]> = [
    ["every peer ready", [["b", record("ready", 1000)], ["c", record("ready", 1000)]], true],
    ["a peer still joining", [["b", record("joining", 1000, 900)], ["c", record("ready", 1000)]], false],
    ["a joining peer fallen silent (dead)", [["b", record("joining", 300, 200)], ["c", record("ready", 1000)]], true],
    ["a peer joining for longer than the limit (stuck)", [["b", record("joining", 1000, 1000 - 1400)], ["c", record("ready", 1000)]], true],
    ["a leaving peer", [["b", record("leaving", 1000)], ["c", record("ready", 1000)]], true],
    ["a peer heard once, long ago (dead)", [["b", record("ready", 100)], ["c", record("ready", 1000)]], true],
  ];
  for (const [what, entries, converged] of convergedCases) {
    it(`view converged with ${what}: ${converged}`, () => {
      assert.equal(viewConverged(new Map(entries), { now: 1100, deadAfterMs: 600, joiningLimitMs: 1350 }), converged);
    });
  }
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
    // d is never a real member: do not wait the default 5 s for it at every start.
    const member = await startMembership({ nodeName: node, key, port, bindAddresses: [addresses.get(node) as string], logger, registry, silentPeerGraceMs: 1000, onChange() {} });
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

describe("membership at start-up", () => {
  const port = 20_000 + Math.floor(Math.random() * 40_000);
  const addresses = new Map([
    ["a", "127.0.0.1"],
    ["b", "127.0.0.2"],
    ["stuck", "127.0.0.3"],
    // A node whose speaker never runs.
    ["gone", "127.0.0.4"],
  ]);
  const members: Membership[] = [];
  after(async () => {
    await Promise.all(members.map((m) => m.close()));
  });

  /** Starts a member that records every live set it reports; `setPeers` is left to the caller. */
  const start = async (node: string, options: { joinGraceMs?: number; joiningLimitMs?: number; silentPeerGraceMs?: number } = {}) => {
    const views: string[] = [];
    const member = await startMembership({
      nodeName: node,
      key,
      port,
      bindAddresses: [addresses.get(node) as string],
      logger,
      registry: new Registry(),
      onChange(live) {
        views.push(sorted(live));
      },
      ...options,
    });
    members.push(member);
    return { member, views };
  };
  const closeAll = async () => {
    await Promise.all(members.splice(0).map((m) => m.close()));
  };

  // The speaker's election counts exactly these sets: a set holding a node without its live peer is a
  // moment in which that node would announce what the peer wins.
  for (const [what, lagMs] of [
    ["at the same moment", 0],
    ["one 300 ms after the other (a slower process)", 300],
    ["one 2 s after the other (a much slower process)", 2000],
  ] as const) {
    it(`two members started ${what} never count themselves without the other`, async () => {
      const peers = new Map([...addresses].filter(([n]) => n === "a" || n === "b"));
      const a = await start("a");
      const b = await start("b");
      a.member.setPeers(peers);
      if (lagMs > 0) await new Promise((resolve) => setTimeout(resolve, lagMs));
      b.member.setPeers(peers);
      await waitFor("both to see a and b", () => sorted(a.member.live()) === "a,b" && sorted(b.member.live()) === "a,b");
      assert.ok(a.views.every((v) => v === "" || v === "b" || v === "a,b"), `a's views: ${a.views.join(" | ")}`);
      assert.ok(b.views.every((v) => v === "" || v === "a" || v === "a,b"), `b's views: ${b.views.join(" | ")}`);
      await closeAll();
    });
  }

  it("a member that has not heard every peer stays joining, and uncounted by the others, until the wait is over", async () => {
    const peers = new Map([...addresses].filter(([n]) => n !== "stuck"));
    const b = await start("b", { silentPeerGraceMs: 300 });
    b.member.setPeers(peers);
    await waitFor("b to count itself, alone", () => sorted(b.member.live()) === "b");
    const a = await start("a", { silentPeerGraceMs: 2000 });
    a.member.setPeers(peers);
    // Past its join grace a has heard b but never "gone": it stays joining, so b does not hand it anything.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.equal(sorted(b.member.live()), "b", "b does not count a yet");
    assert.equal(sorted(a.member.live()), "b", "a does not count itself yet");
    await waitFor("a to be ready after the wait", () => sorted(a.member.live()) === "a,b" && sorted(b.member.live()) === "a,b");
    assert.ok(a.views.every((v) => v === "" || v === "b" || v === "a,b"), `a's views: ${a.views.join(" | ")}`);
    await closeAll();
  });

  it("a peer stuck in joining is waited for only up to the limit", async () => {
    const peers = new Map([...addresses].filter(([n]) => n === "a" || n === "stuck"));
    const stuck = createSocket("udp4");
    await new Promise<void>((resolve) => stuck.bind(0, "127.0.0.3", resolve));
    let seq = 0;
    const timer = setInterval(() => {
      seq += 1;
      stuck.send(encodeHeartbeat({ node: "stuck", incarnation: 1, seq, sentAt: Date.now(), state: "joining" }, key), port, "127.0.0.1");
    }, 50);
    try {
      const a = await start("a", { joinGraceMs: 200, joiningLimitMs: 1500 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      a.member.setPeers(peers);
      // Past its own grace, a still waits: its peer says it is joining.
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(a.member.live().has("a"), false, "a waits for the joining peer");
      await waitFor("a to stop waiting for the stuck peer", () => a.member.live().has("a"));
      assert.equal(a.member.live().has("stuck"), false, "a peer that never got ready is not live");
    } finally {
      clearInterval(timer);
      stuck.close();
      await closeAll();
    }
  });
});

describe("membership when this process stalls", () => {
  const port = 20_000 + Math.floor(Math.random() * 40_000);
  let member: Membership | undefined;
  let sender: ChildProcess | undefined;
  after(async () => {
    sender?.kill();
    await member?.close();
  });

  it("does not count a peer dead that kept sending while this process was blocked", async () => {
    const views: string[] = [];
    member = await startMembership({
      nodeName: "a",
      key,
      port,
      bindAddresses: ["127.0.0.1"],
      logger,
      registry: new Registry(),
      joinGraceMs: 100,
      // Generous, so that the sender being starved of CPU on a busy machine is not taken for the bug.
      deadAfterMs: 1000,
      onChange(live) {
        views.push(sorted(live));
      },
    });
    member.setPeers(new Map([["a", "127.0.0.1"], ["b", "127.0.0.2"]]));
    // b is another process, so it keeps sending while this one is blocked.
    const protocol = new URL("../src/membership/protocol.ts", import.meta.url).href;
    sender = spawn(process.execPath, [
      "--input-type=module",
      "-e",
      `import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";
import { PassThrough } from "node:stream";
       import { encodeHeartbeat } from ${JSON.stringify(protocol)};
       const socket = createSocket("udp4");
       socket.bind(0, "127.0.0.2", () => {
         let seq = 0;
         setInterval(() => {
           seq += 1;
           socket.send(encodeHeartbeat({ node: "b", incarnation: 1, seq, sentAt: Date.now(), state: "ready" }, Buffer.from(${JSON.stringify(key.toString())})), ${port}, "127.0.0.1");
         }, 50);
       });`,
    ], { stdio: "ignore" });
    await waitFor("a to count b", () => sorted((member as Membership).live()) === "a,b");
    const before = views.length;
    // Three times the dead timeout without running the event loop, blocked in its check phase (as a
    // long I/O callback would be), so that timers come before the I/O phase when it resumes.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        const until = Date.now() + 3000;
        while (Date.now() < until) {}
        resolve();
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(views.slice(before), [], "the live set did not change");
    assert.equal(sorted(member.live()), "a,b");
  });
});

describe("membership messages from the wire", () => {
  const port = 20_000 + Math.floor(Math.random() * 40_000);
  const addresses = new Map([
    ["a", "127.0.0.1"],
    ["b", "127.0.0.2"],
    // Not a speaker: a socket that receives what b sends to every peer, as an attacker on the LAN would.
    ["tap", "127.0.0.3"],
  ]);
  const members = new Map<string, Membership>();
  const sockets: ReturnType<typeof createSocket>[] = [];
  after(async () => {
    for (const s of sockets) s.close();
    await Promise.all([...members.values()].map((m) => m.close()));
  });
  const stop = async (node: string) => {
    await members.get(node)?.close();
    members.delete(node);
  };

  const start = async (node: string, options: { maxSkewMs?: number; destination?: NodeJS.WritableStream } = {}) => {
    const registry = new Registry();
    const member = await startMembership({
      nodeName: node,
      key,
      port,
      bindAddresses: [addresses.get(node) as string],
      logger: options.destination ? createLogger({ name: "membership-test", level: "debug", destination: options.destination }) : logger,
      registry,
      silentPeerGraceMs: 500,
      ...(options.maxSkewMs === undefined ? {} : { maxSkewMs: options.maxSkewMs }),
      onChange() {},
    });
    member.setPeers(addresses);
    members.set(node, member);
    const counted = async (result: string) =>
      (await registry.getSingleMetric("bollard_speaker_membership_messages_received_total")?.get())?.values.find((v) => v.labels.result === result)?.value ?? 0;
    return { member, counted };
  };
  const udpSocket = async (address: string, port = 0) => {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(port, address, resolve));
    sockets.push(socket);
    return socket;
  };

  it("refuses a datagram captured from the wire and replayed, also after its sender left", async () => {
    const captured: Buffer[] = [];
    const tap = await udpSocket("127.0.0.3", port);
    tap.on("message", (packet) => captured.push(packet));
    const a = await start("a");
    await start("b");
    await waitFor("a to count b", () => sorted(a.member.live()) === "a,b");
    // The tap hears both a and b, and b sends to each peer in turn, so the last datagram may be a's, or one of b's
    // joining heartbeats: wait for a ready heartbeat from b rather than taking whatever arrived last.
    const isReady = (p: Buffer) => {
      const d = decodeHeartbeat(p, key);
      return d.ok && d.heartbeat.node === "b" && d.heartbeat.state === "ready";
    };
    await waitFor("a ready heartbeat of b on the wire", () => captured.some(isReady));
    const packet = captured.findLast(isReady) as Buffer;
    const decoded = decodeHeartbeat(packet, key);
    assert.ok(decoded.ok && decoded.heartbeat.node === "b" && decoded.heartbeat.state === "ready", "captured b's ready heartbeat");

    const replayer = await udpSocket("127.0.0.3");
    replayer.send(packet, port, "127.0.0.1");
    await waitForAsync("a to count a replay", async () => (await a.counted("replay")) >= 1);

    await stop("b");
    await waitFor("a to drop b, which left", () => sorted(a.member.live()) === "a");
    const replays = setInterval(() => replayer.send(packet, port, "127.0.0.1"), 50);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(sorted(a.member.live()), "a", "replays of a live heartbeat did not bring b back");
    } finally {
      clearInterval(replays);
    }
    assert.ok((await a.counted("replay")) >= 10, "every replay was counted");
  });

  it("a receiver with no record of the sender refuses a captured datagram once it is older than the clock window", async () => {
    const captured: Buffer[] = [];
    const tap = sockets[0] as ReturnType<typeof createSocket>;
    tap.removeAllListeners("message");
    tap.on("message", (packet) => captured.push(packet));
    await start("b");
    // a is still running and heard by the tap too: take b's first datagram, not whichever came first.
    const fromB = (p: Buffer) => {
      const d = decodeHeartbeat(p, key);
      return d.ok && d.heartbeat.node === "b";
    };
    await waitFor("a heartbeat of b on the wire", () => captured.some(fromB));
    await stop("b");
    const packet = captured.find(fromB) as Buffer;
    // A fresh receiver (no high-water mark for b) whose clock window is 300 ms, after 600 ms.
    await stop("a");
    const fresh = await start("a", { maxSkewMs: 300 });
    await new Promise((resolve) => setTimeout(resolve, 600));
    (await udpSocket("127.0.0.3")).send(packet, port, "127.0.0.1");
    await waitForAsync("the stale datagram to be counted", async () => (await fresh.counted("stale")) >= 1);
    assert.equal(fresh.member.live().has("b"), false);
  });

  it("counts every datagram signed with a wrong key and logs them at debug once per interval", async () => {
    const lines: Array<{ level: number; msg: string; reason?: string }> = [];
    const destination = new PassThrough();
    createInterface({ input: destination }).on("line", (line) => lines.push(JSON.parse(line)));
    await stop("a");
    const receiver = await start("a", { destination });
    const forger = await udpSocket("127.0.0.3");
    const wrongKey = Buffer.from("not the shared secret, but long");
    const forgeries = 200;
    for (let seq = 1; seq <= forgeries; seq++) {
      forger.send(encodeHeartbeat({ node: "b", incarnation: 9, seq, sentAt: Date.now(), state: "ready" }, wrongKey), port, "127.0.0.1");
      if (seq % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitForAsync("every forgery to be counted", async () => (await receiver.counted("bad-signature")) === forgeries);
    const logged = lines.filter((l) => l.msg === "dropped membership packet" && l.reason === "bad-signature");
    assert.equal(logged.length, 1, "logged once, not once per datagram");
    assert.equal(logged[0]?.level, 20, "at debug");
    assert.equal(receiver.member.live().has("b"), false);
  });
});

async function waitForAsync(what: string, condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
