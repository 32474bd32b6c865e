// Membership over real UDP sockets on loopback (127.0.0.0/8 gives each member its own address). The
// protocol's rules are pinned in gossip.test.ts and its datagram in wire.test.ts.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { createLogger } from "@bollard/core";
import { Registry } from "prom-client";
import type { Message, Update } from "../src/membership/gossip.ts";
import { type Membership, MembershipKeyError, MembershipNameError, startMembership } from "../src/membership/membership.ts";
import { decodeDatagram, encodeDatagram } from "../src/membership/wire.ts";

const key = Buffer.from("0123456789abcdef0123456789abcdef");
const logger = createLogger({ level: "warn", name: "membership-test" });

/**
 * A peer speaking the protocol by hand, as a crashed or stuck process would look: it answers pings
 * addressed to it and gossips its own record every 50 ms to `targets`, until `stop` (then it is silent).
 */
async function handPeer(name: string, address: string, options: { port: number; ready: boolean; targets: ReadonlyMap<string, string> }) {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(options.port, address, resolve));
  const session = Date.now();
  let seq = 0;
  const sent: Buffer[] = [];
  const record: Update = { kind: "alive", node: name, incarnation: session, ready: options.ready };
  const send = (to: string, message: Message) => {
    seq += 1;
    const packet = encodeDatagram({ header: { sender: name, receiver: to, session, seq, sentAt: Date.now() }, message }, key);
    sent.push(packet);
    socket.send(packet, options.port, options.targets.get(to) as string);
  };
  socket.on("message", (packet) => {
    const decoded = decodeDatagram(packet, key);
    if (!decoded.ok) return;
    const { header, message } = decoded.datagram;
    if (message.type === "ping" && message.target === name) send(header.sender, { type: "ack", seq: message.seq, updates: [record] });
  });
  const timer = setInterval(() => {
    for (const to of options.targets.keys()) send(to, { type: "gossip", updates: [record] });
  }, 50);
  let stopped = false;
  return {
    sent,
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      socket.close();
    },
  };
}

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

  it("refuses a short key, and a node name the protocol cannot carry", async () => {
    await assert.rejects(
      startMembership({ nodeName: "x", key: Buffer.from("short"), port, logger, registry: new Registry(), onChange() {} }),
      MembershipKeyError,
    );
    await assert.rejects(startMembership({ nodeName: "Not_A_Node", key, port, logger, registry: new Registry(), onChange() {} }), MembershipNameError);
  });

  it("members find each other, drop a leaving one, and a dead one after the timeout", async () => {
    const [a, b] = [await start("a"), await start("b")];
    const c = await start("c");
    await waitFor("a, b and c to see each other", () => [a, b, c].every((m) => sorted(m.live()) === "a,b,c"));

    await c.close();
    members.splice(members.indexOf(c), 1);
    await waitFor("c to be dropped after saying leaving", () => sorted(a.live()) === "a,b" && sorted(b.live()) === "a,b");

    // d: a real peer speaking the protocol by hand, which then falls silent (a crashed node).
    const d = await handPeer("d", "127.0.0.4", { port, ready: true, targets: new Map([...addresses].filter(([n]) => n === "a" || n === "b")) });
    try {
      await waitFor("d to be live", () => sorted(a.live()) === "a,b,d");
    } finally {
      d.stop();
    }
    // A replay of d's last datagram to a must not keep it alive.
    const last = d.sent.findLast((p) => {
      const decoded = decodeDatagram(p, key);
      return decoded.ok && decoded.datagram.header.receiver === "a";
    }) as Buffer;
    const replayer = createSocket("udp4");
    await new Promise<void>((resolve) => replayer.bind(0, "127.0.0.4", resolve));
    const replays = setInterval(() => replayer.send(last, port, "127.0.0.1"), 100);
    try {
      await waitFor("silent d to be dead", () => sorted(a.live()) === "a,b");
    } finally {
      clearInterval(replays);
      replayer.close();
    }
    assert.ok((await resultCount("a", "replay")) > 0, "replays were counted");
    // d's host is up but nothing listens on its port any more: the probe that found it gone was refused (ICMP port
    // unreachable), which brought the indirect probe forward, and is counted.
    const refused = async (node: string) =>
      (await (registries.get(node) as Registry).getSingleMetric("bollard_speaker_membership_events_total")?.get())?.values.find((v) => v.labels.kind === "refused")?.value ?? 0;
    assert.ok((await refused("a")) + (await refused("b")) > 0, "a probe of d was refused");
  });

  it("a forged heartbeat (wrong key) never makes a node live", async () => {
    const a = members.find((m) => m.live().has("a")) as Membership;
    const forger = createSocket("udp4");
    await new Promise<void>((resolve) => forger.bind(0, "127.0.0.4", resolve));
    try {
      for (let seq = 1; seq <= 10; seq++) {
        const message: Message = { type: "gossip", updates: [{ kind: "alive", node: "d", incarnation: Date.now(), ready: true }] };
        const packet = encodeDatagram({ header: { sender: "d", receiver: "a", session: 5, seq, sentAt: Date.now() }, message }, Buffer.from("not the shared secret, but long"));
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

  // Each report's change must be the difference from the set reported before (the speaker uses it as such).
  const wrongChanges: string[] = [];
  /** Starts a member that records every live set it reports; `setPeers` is left to the caller. */
  const start = async (node: string, options: { joinGraceMs?: number; joiningLimitMs?: number; silentPeerGraceMs?: number } = {}) => {
    const views: string[] = [];
    let previous: ReadonlySet<string> = new Set();
    const member = await startMembership({
      nodeName: node,
      key,
      port,
      bindAddresses: [addresses.get(node) as string],
      logger,
      registry: new Registry(),
      onChange(live, change) {
        views.push(sorted(live));
        const joined = [...live].filter((n) => !previous.has(n)).sort();
        const left = [...previous].filter((n) => !live.has(n)).sort();
        if (`${joined}` !== `${[...change.joined].sort()}` || `${left}` !== `${[...change.left].sort()}`) wrongChanges.push(`${node}: ${JSON.stringify(change)}, was ${sorted(previous)}, now ${sorted(live)}`);
        previous = live;
      },
      ...options,
    });
    members.push(member);
    return { member, views };
  };
  const closeAll = async () => {
    await Promise.all(members.splice(0).map((m) => m.close()));
    assert.deepEqual(wrongChanges, []);
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
    // A process stuck in joining: it answers pings, so it is alive, but it never says ready.
    const stuck = await handPeer("stuck", "127.0.0.3", { port, ready: false, targets: new Map([["a", "127.0.0.1"]]) });
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
      stuck.stop();
      await closeAll();
    }
  });
});

describe("membership when this process stalls", () => {
  const port = 20_000 + Math.floor(Math.random() * 40_000);
  let member: Membership | undefined;
  let peer: ChildProcess | undefined;
  after(async () => {
    peer?.kill("SIGKILL");
    await member?.close();
  });

  it("does not count a peer dead that kept running while this process was blocked, nor is counted dead by it", async () => {
    const views: string[] = [];
    const peers = new Map([
      ["a", "127.0.0.1"],
      ["b", "127.0.0.2"],
    ]);
    member = await startMembership({
      nodeName: "a",
      key,
      port,
      bindAddresses: ["127.0.0.1"],
      logger,
      registry: new Registry(),
      joinGraceMs: 100,
      // Generous (a 1 s suspicion), so that the peer process being starved of CPU on a busy machine is
      // not taken for the bug.
      suspicionMult: 5,
      onChange(live) {
        views.push(sorted(live));
      },
    });
    member.setPeers(peers);
    // b is a real member in another process, so it keeps running while this one is blocked; it prints
    // every live set it has. This process's liveness thread acks b's pings meanwhile, so b keeps it.
    const membership = new URL("../src/membership/membership.ts", import.meta.url).href;
    const core = import.meta.resolve("@bollard/core");
    peer = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { startMembership } from ${JSON.stringify(membership)};
         import { createLogger } from ${JSON.stringify(core)};
         import { Registry } from "prom-client";
         const m = await startMembership({ nodeName: "b", key: Buffer.from(${JSON.stringify(key.toString())}), port: ${port},
           bindAddresses: ["127.0.0.2"], logger: createLogger({ level: "warn", name: "b", destination: process.stderr }), registry: new Registry(), joinGraceMs: 100,
           onChange(live) { process.stdout.write(JSON.stringify([...live].sort().join(",")) + "\\n"); } });
         m.setPeers(new Map(${JSON.stringify([...peers])}));
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ["ignore", "pipe", "ignore"], cwd: new URL("..", import.meta.url).pathname },
    );
    const peerViews: string[] = [];
    createInterface({ input: peer.stdout as NodeJS.ReadableStream }).on("line", (line) => peerViews.push(JSON.parse(line) as string));
    await waitFor("a to count b", () => sorted((member as Membership).live()) === "a,b");
    await waitFor("b to count a", () => peerViews.at(-1) === "a,b");
    const peerBefore = peerViews.length;
    const before = views.length;
    // Three seconds without running the event loop, blocked in its check phase (as a long I/O callback
    // would be), so that timers come before the I/O phase when it resumes.
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
    assert.deepEqual(peerViews.slice(peerBefore), [], "b's live set did not change: it never counted a dead");
  });
});

describe("membership messages from the wire", () => {
  const port = 20_000 + Math.floor(Math.random() * 40_000);
  const addresses = new Map([
    ["a", "127.0.0.1"],
    ["b", "127.0.0.2"],
  ]);
  // b reaches a through a tap (not a speaker): a socket on the path that records what b sends to a and
  // passes it on, as an attacker on the LAN could.
  const throughTap = new Map([
    ["a", "127.0.0.3"],
    ["b", "127.0.0.2"],
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
    member.setPeers(node === "b" ? throughTap : addresses);
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
  const captured: Buffer[] = [];
  const fromBToA = (p: Buffer) => {
    const d = decodeDatagram(p, key);
    return d.ok && d.datagram.header.sender === "b" && d.datagram.header.receiver === "a";
  };

  it("refuses a datagram captured from the wire and replayed, also after its sender left", async () => {
    const tap = await udpSocket("127.0.0.3", port);
    tap.on("message", (packet) => {
      captured.push(packet);
      tap.send(packet, port, "127.0.0.1");
    });
    const a = await start("a");
    await start("b");
    await waitFor("a to count b", () => sorted(a.member.live()) === "a,b");
    await waitFor("a datagram of b's to a on the wire", () => captured.some(fromBToA));
    const packet = captured.findLast(fromBToA) as Buffer;
    // a must have had a later one from b (b probes a every period) for this one to be a replay.
    const seen = captured.length;
    await waitFor("a later datagram of b's", () => captured.length > seen);

    const replayer = await udpSocket("127.0.0.4");
    replayer.send(packet, port, "127.0.0.1");
    await waitForAsync("a to count a replay", async () => (await a.counted("replay")) >= 1);

    await stop("b");
    await waitFor("a to drop b, which left", () => sorted(a.member.live()) === "a");
    const replays = setInterval(() => replayer.send(packet, port, "127.0.0.1"), 50);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(sorted(a.member.live()), "a", "replays of a live member's datagram did not bring b back");
    } finally {
      clearInterval(replays);
    }
    assert.ok((await a.counted("replay")) >= 10, "every replay was counted");
  });

  it("a receiver with no record of the sender refuses a captured datagram once it is older than the clock window", async () => {
    captured.length = 0;
    await start("b");
    await waitFor("a datagram of b's to a on the wire", () => captured.some(fromBToA));
    await stop("b");
    const packet = captured.find(fromBToA) as Buffer;
    // A fresh receiver (no mark for b) whose clock window is 300 ms, after 600 ms.
    await stop("a");
    const fresh = await start("a", { maxSkewMs: 300 });
    await new Promise((resolve) => setTimeout(resolve, 600));
    (await udpSocket("127.0.0.4")).send(packet, port, "127.0.0.1");
    await waitForAsync("the stale datagram to be counted", async () => (await fresh.counted("stale")) >= 1);
    assert.equal(fresh.member.live().has("b"), false);
  });

  it("refuses a datagram of b's meant for another member", async () => {
    const meantForTap = encodeDatagram(
      { header: { sender: "b", receiver: "tap", session: Date.now(), seq: 1, sentAt: Date.now() }, message: { type: "gossip", updates: [{ kind: "alive", node: "b", incarnation: Date.now(), ready: true }] } },
      key,
    );
    const a = await (async () => {
      await stop("a");
      return start("a");
    })();
    (await udpSocket("127.0.0.4")).send(meantForTap, port, "127.0.0.1");
    await waitForAsync("the misdirected datagram to be counted", async () => (await a.counted("misdirected")) >= 1);
    assert.equal(a.member.live().has("b"), false);
  });

  it("counts every datagram signed with a wrong key and logs them at debug once per interval", async () => {
    const lines: Array<{ level: number; msg: string; reason?: string }> = [];
    const destination = new PassThrough();
    createInterface({ input: destination }).on("line", (line) => lines.push(JSON.parse(line)));
    await stop("a");
    const receiver = await start("a", { destination });
    const forger = await udpSocket("127.0.0.4");
    const wrongKey = Buffer.from("not the shared secret, but long");
    const forgeries = 200;
    for (let seq = 1; seq <= forgeries; seq++) {
      const message: Message = { type: "gossip", updates: [{ kind: "alive", node: "b", incarnation: 9, ready: true }] };
      forger.send(encodeDatagram({ header: { sender: "b", receiver: "a", session: 9, seq, sentAt: Date.now() }, message }, wrongKey), port, "127.0.0.1");
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
