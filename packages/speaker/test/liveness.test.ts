// The liveness thread's own HMAC-SHA256 (it signs and checks membership datagrams without node:crypto)
// against node:crypto, over key and message lengths around SHA-256's 64-byte block; and which datagrams it
// keeps back from JavaScript.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createSocket } from "node:dgram";
import { describe, it } from "node:test";
import { type NativeMember, nativeHmacSha256, openNativeMember } from "../src/liveness/liveness.ts";
import type { Message, Update } from "../src/membership/gossip.ts";
import { decodeDatagram, encodeDatagram, encodeUnsigned } from "../src/membership/wire.ts";

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 17 + 7) & 0xff));

describe("the liveness thread's HMAC-SHA256", () => {
  for (const keyLength of [1, 16, 32, 63, 64, 65, 200]) {
    it(`matches node:crypto with a ${keyLength}-byte key`, () => {
      const key = bytes(keyLength, keyLength);
      for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1368, 1400]) {
        const data = bytes(length, length + 1);
        assert.deepEqual(nativeHmacSha256(key, data), createHmac("sha256", key).update(data).digest(), `${length}-byte message`);
      }
    });
  }
});

// The thread keeps back datagrams that would change nothing in JavaScript ("quiet"). Peer b is a UDP socket
// speaking the protocol by hand; each row sends one datagram to member a and says whether JavaScript gets it.
describe("the liveness thread's quiet datagrams", () => {
  const key = Buffer.from("0123456789abcdef0123456789abcdef");
  const alive = (node: string, incarnation: number): Update => ({ kind: "alive", node, incarnation, ready: true });
  type Row = {
    name: string;
    /** JavaScript's state before the datagram is sent. */
    setup?: (member: NativeMember) => void;
    message: Message;
    /** Send the row before's datagram again instead (same number). */
    replay?: boolean;
    delivered: boolean;
    acked?: boolean;
    replayed?: boolean;
    probeAcked?: number;
  };
  const rows: Row[] = [
    { name: "a ping carrying b's record as JavaScript knows it: acked by the thread, kept", message: { type: "ping", seq: 1, target: "a", updates: [alive("b", 5)] }, delivered: false, acked: true },
    { name: "a ping carrying an older record of b: kept", message: { type: "ping", seq: 2, target: "a", updates: [alive("b", 4)] }, delivered: false, acked: true },
    { name: "a ping carrying a newer record of b: handed over (acked)", message: { type: "ping", seq: 3, target: "a", updates: [alive("b", 6)] }, delivered: true, acked: true },
    { name: "the same datagram again: handed over as a replay, not acked", message: { type: "ping", seq: 3, target: "a", updates: [alive("b", 6)] }, replay: true, delivered: true, acked: false, replayed: true },
    { name: "gossip of a's own record and c's known one: kept", message: { type: "gossip", updates: [alive("a", 99), alive("c", 7)] }, delivered: false },
    { name: "gossip of a record of c JavaScript has none of: handed over", message: { type: "gossip", updates: [alive("b", 5), alive("d", 1)] }, delivered: true },
    { name: "gossip of a suspicion: handed over", message: { type: "gossip", updates: [{ kind: "suspect", node: "c", incarnation: 7, from: "b" }] }, delivered: true },
    {
      name: "gossip of c's death when JavaScript counts c dead at that incarnation: kept",
      setup: (m) => m.setKnown(["c"], [7], [false]),
      message: { type: "gossip", updates: [{ kind: "dead", node: "c", incarnation: 7, from: "d" }, { kind: "suspect", node: "c", incarnation: 6, from: "b", witnesses: 2 }, alive("b", 5)] },
      delivered: false,
    },
    { name: "gossip of c's death at a higher incarnation: handed over", message: { type: "gossip", updates: [{ kind: "dead", node: "c", incarnation: 8, from: "d" }] }, delivered: true },
    { name: "gossip of a suspicion about a's own node: handed over", message: { type: "gossip", updates: [{ kind: "suspect", node: "a", incarnation: 0, from: "b" }] }, delivered: true },
    { name: "an ack nobody watches (a relay's): handed over", message: { type: "ack", seq: 40, updates: [alive("b", 5)] }, delivered: true },
    {
      name: "the ack of the watched probe: kept, and noted for probeAcked",
      setup: (m) => m.watchProbe("b", 41, 10_000, 10_000),
      message: { type: "ack", seq: 41, updates: [alive("b", 5)] },
      delivered: false,
      probeAcked: 41,
    },
    { name: "a sync: always handed over", message: { type: "sync", updates: [alive("b", 5)] }, delivered: true },
    {
      name: "with news waiting in JavaScript, a quiet ping is handed over (its ack carries the news)",
      setup: (m) => m.setSelf(1, true, true, true),
      message: { type: "ping", seq: 4, target: "a", updates: [alive("b", 5)] },
      delivered: true,
      acked: true,
    },
    {
      name: "from a peer JavaScript counts dead: handed over (it is told so)",
      setup: (m) => {
        m.setSelf(1, true, true, false);
        m.setKnown(["b"], [5], [false]);
      },
      message: { type: "ping", seq: 5, target: "a", updates: [alive("b", 5)] },
      delivered: true,
      acked: true,
    },
  ];

  it("keeps back exactly the datagrams that carry no news", async () => {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const got: Array<{ acked: boolean; authentic: boolean; replayed: boolean }> = [];
    const member = openNativeMember({
      self: "a",
      key,
      session: 1,
      maxSkewMs: 5000,
      onDatagram: (_p, acked, authentic, replayed) => got.push({ acked, authentic, replayed }),
      onProbeTimeout() {},
    });
    const b = createSocket("udp4");
    const acks: Buffer[] = [];
    b.on("message", (packet) => acks.push(packet));
    try {
      member.bind("127.0.0.1", port);
      await new Promise<void>((resolve) => b.bind(port, "127.0.0.2", resolve));
      member.setPeers(new Map([["b", "127.0.0.2"], ["c", "127.0.0.3"], ["d", "127.0.0.4"]]), port);
      member.setSelf(1, true, true, false);
      member.setKnown(["b", "c"], [5, 7], [true, true]);
      const session = Date.now();
      let seq = 0;
      let last: Buffer | undefined;
      for (const row of rows) {
        row.setup?.(member);
        const before = { got: got.length, acks: acks.length, quiet: member.stats().quietDatagrams };
        const packet = row.replay && last ? last : encodeDatagram({ header: { sender: "b", receiver: "a", session, seq: ++seq, sentAt: Date.now() }, message: row.message }, key);
        last = packet;
        b.send(packet, port, "127.0.0.1");
        // The thread either hands it over or counts it quiet; either way it has read it.
        await waitFor(row.name, () => got.length > before.got || member.stats().quietDatagrams > before.quiet);
        assert.equal(got.length > before.got, row.delivered, row.name);
        if (row.delivered) {
          const d = got.at(-1);
          assert.equal(d?.authentic, true, row.name);
          assert.equal(d?.acked, row.acked ?? false, `${row.name}: acked`);
          assert.equal(d?.replayed, row.replayed ?? false, `${row.name}: replayed`);
        } else if (row.acked) {
          await waitFor(`${row.name}: the ack`, () => acks.length > before.acks);
        }
        if (row.probeAcked !== undefined) {
          assert.equal(member.probeAcked(row.probeAcked), true, row.name);
          assert.equal(member.probeAcked(row.probeAcked + 1), false, "only the watched probe");
        }
      }
      const stats = member.stats();
      assert.equal(stats.quietDatagrams, rows.filter((r) => !r.delivered).length);
      assert.ok(stats.quietBytes > 0);
    } finally {
      b.close();
      member.close();
    }
  });
});

// The thread refutes a suspect or dead record about its own node as soon as it reads one (the core refutes only
// when the event loop runs): one above the accusation's incarnation, in its ack when the datagram is a ping to it,
// and as gossip to the sender otherwise and to the accuser. Peers b, c and d are UDP sockets speaking by hand.
describe("the liveness thread's refutations", () => {
  const key = Buffer.from("0123456789abcdef0123456789abcdef");
  type Row = {
    name: string;
    setup?: (member: NativeMember) => void;
    /** Sent by b. */
    message: Message;
    /** a's incarnation afterwards, as its acks and the delivery carry it. */
    incarnation: number;
    /** Peers that get a's record at that incarnation as gossip (beside the fanout's random ones). */
    gossipTo?: string[];
    /** Whether b's ping is acked (with a's record at `incarnation`). */
    acked?: boolean;
    refuted: boolean;
  };
  const suspect = (incarnation: number, from: string, witnesses?: number): Update => ({ kind: "suspect", node: "a", incarnation, from, ...(witnesses === undefined ? {} : { witnesses }) });
  // A newer record of c: news, so the datagram is handed over (and its delivery tells a's incarnation).
  const news = (incarnation: number): Update => ({ kind: "alive", node: "c", incarnation, ready: true });
  const rows: Row[] = [
    { name: "a ping carrying a suspicion at a's incarnation: refuted in the ack, and to the accuser", message: { type: "ping", seq: 1, target: "a", updates: [suspect(10, "c")] }, incarnation: 11, acked: true, gossipTo: ["c"], refuted: true },
    { name: "an older suspicion: nothing to refute", message: { type: "gossip", updates: [suspect(10, "c")] }, incarnation: 11, refuted: false },
    { name: "a witnessed suspicion among other records, in gossip: refuted to the sender and the accuser", message: { type: "gossip", updates: [{ kind: "alive", node: "c", incarnation: 3, ready: true }, suspect(11, "d", 2)] }, incarnation: 12, gossipTo: ["b", "d"], refuted: true },
    { name: "an aged witnessed suspicion (kind 4) before another record: read past its age, refuted", message: { type: "gossip", updates: [{ ...suspect(12, "c", 3), ageMs: 140 } as Update, { kind: "alive", node: "d", incarnation: 3, ready: true }] }, incarnation: 13, gossipTo: ["b", "c"], refuted: true },
    { name: "a verdict of death above a's incarnation: refuted one above it", message: { type: "gossip", updates: [{ kind: "dead", node: "a", incarnation: 20, from: "c" }] }, incarnation: 21, gossipTo: ["b", "c"], refuted: true },
    { name: "a's own leave (from itself): not refuted", message: { type: "gossip", updates: [{ kind: "dead", node: "a", incarnation: 21, from: "a" }] }, incarnation: 21, refuted: false },
    { name: "JavaScript's record at a lower number: the thread's stays", setup: (m) => m.setSelf(15, true, true, false), message: { type: "ping", seq: 2, target: "a", updates: [news(100)] }, incarnation: 21, acked: true, refuted: false },
    { name: "a record that differs (not ready) at a number no higher: the next number", setup: (m) => m.setSelf(21, false, true, false), message: { type: "ping", seq: 3, target: "a", updates: [news(101)] }, incarnation: 22, acked: true, refuted: false },
    { name: "not answering (leaving): nothing refuted", setup: (m) => m.setSelf(22, false, false, false), message: { type: "gossip", updates: [suspect(22, "c")] }, incarnation: 22, refuted: false },
  ];

  it("refutes accusations of its own node at once, and never lowers the incarnation", async () => {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const got: number[] = [];
    const member = openNativeMember({ self: "a", key, session: 1, maxSkewMs: 5000, onDatagram: (_p, _acked, _authentic, _replayed, incarnation) => got.push(incarnation), onProbeTimeout() {} });
    const peers = ["b", "c", "d"];
    const sockets = new Map(peers.map((name) => [name, createSocket("udp4")]));
    // What each peer received from a: [type, a's incarnation in its own record].
    const received = new Map<string, Array<[string, number]>>(peers.map((name) => [name, []]));
    try {
      member.bind("127.0.0.1", port);
      for (const [i, name] of peers.entries()) {
        const socket = sockets.get(name);
        socket?.on("message", (packet) => {
          const decoded = decodeDatagram(packet, key);
          if (!decoded.ok) return;
          const own = decoded.datagram.message.updates.find((u) => u.node === "a" && u.kind === "alive");
          received.get(name)?.push([decoded.datagram.message.type, own?.incarnation ?? -1]);
        });
        await new Promise<void>((resolve) => socket?.bind(port, `127.0.0.${i + 2}`, resolve));
      }
      member.setPeers(new Map(peers.map((name, i) => [name, `127.0.0.${i + 2}`])), port);
      member.setSelf(10, true, true, false);
      member.setKnown(peers, [5, 7, 9], [true, true, true]);
      const session = Date.now();
      let seq = 0;
      for (const row of rows) {
        row.setup?.(member);
        const before = { got: got.length, refutations: member.stats().refutations, received: new Map(peers.map((p) => [p, received.get(p)?.length ?? 0])) };
        const packet = encodeDatagram({ header: { sender: "b", receiver: "a", session, seq: ++seq, sentAt: Date.now() }, message: row.message }, key);
        sockets.get("b")?.send(packet, port, "127.0.0.1");
        await waitFor(row.name, () => got.length > before.got);
        assert.equal(got.at(-1), row.incarnation, `${row.name}: the incarnation delivered`);
        assert.equal(member.stats().refutations - before.refutations, row.refuted ? 1 : 0, `${row.name}: refuted`);
        const since = (peer: string) => (received.get(peer) ?? []).slice(before.received.get(peer));
        if (row.acked) {
          await waitFor(`${row.name}: the ack`, () => since("b").some(([type]) => type === "ack"));
          assert.deepEqual(since("b").find(([type]) => type === "ack"), ["ack", row.incarnation], `${row.name}: the ack's record`);
        }
        for (const peer of row.gossipTo ?? []) {
          await waitFor(`${row.name}: gossip to ${peer}`, () => since(peer).some(([type]) => type === "gossip"));
          assert.deepEqual(since(peer).find(([type]) => type === "gossip"), ["gossip", row.incarnation], `${row.name}: the record ${peer} got`);
        }
        if (!row.refuted) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          for (const peer of peers) assert.equal(since(peer).filter(([type]) => type === "gossip").length, 0, `${row.name}: no gossip to ${peer}`);
        }
      }
      assert.ok(member.stats().refutationBytes > 0);
    } finally {
      for (const socket of sockets.values()) socket.close();
      member.close();
    }
  });
});

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("the liveness thread's probe timers", () => {
  const key = Buffer.from("0123456789abcdef0123456789abcdef");
  it("pings an unanswered probe's target once more at the retry and tells JavaScript at the timeout; an ack stops both", async () => {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    let timeouts = 0;
    const member = openNativeMember({ self: "a", key, session: 1, maxSkewMs: 5000, onDatagram() {}, onProbeTimeout: () => (timeouts += 1) });
    const b = createSocket("udp4");
    const pings: Array<{ seq: number; target: string; updates: Update[] }> = [];
    let answer = false;
    let session = Date.now();
    let seq = 0;
    b.on("message", (packet) => {
      const decoded = decodeDatagram(packet, key);
      if (!decoded.ok || decoded.datagram.message.type !== "ping") return;
      const ping = decoded.datagram.message;
      pings.push(ping);
      if (answer) {
        const ack = encodeDatagram({ header: { sender: "b", receiver: "a", session, seq: ++seq, sentAt: Date.now() }, message: { type: "ack", seq: ping.seq, updates: [] } }, key);
        b.send(ack, port, "127.0.0.1");
      }
    });
    try {
      member.bind("127.0.0.1", port);
      await new Promise<void>((resolve) => b.bind(port, "127.0.0.2", resolve));
      member.setPeers(new Map([["b", "127.0.0.2"]]), port);
      member.setSelf(7, true, true, false);
      // Unanswered: one retry (the same probe number, this node's record), then the timeout.
      member.watchProbe("b", 11, 20, 60);
      await waitFor("the timeout", () => timeouts === 1);
      assert.deepEqual(pings, [{ type: "ping", seq: 11, target: "b", updates: [{ kind: "alive", node: "a", incarnation: 7, ready: true }] }]);
      assert.equal(member.stats().probeRetries, 1);
      // Answered (b acks the retry): no timeout.
      answer = true;
      session += 1;
      pings.length = 0;
      member.watchProbe("b", 12, 20, 60);
      await waitFor("the retry", () => pings.length === 1);
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(timeouts, 1, "no timeout after the ack");
      assert.equal(member.probeAcked(12), true);
      assert.equal(pings.length, 1, "no second retry");
    } finally {
      b.close();
      member.close();
    }
  });
  it("tells JavaScript at once when the probe's target refused it (nothing listens on its port), and sends on to others", async () => {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const timeouts: boolean[] = [];
    const member = openNativeMember({ self: "a", key, session: 1, maxSkewMs: 5000, onDatagram() {}, onProbeTimeout: (_incarnation, refused) => timeouts.push(refused) });
    // b's address has no socket on the port: the kernel answers a datagram to it with ICMP port unreachable.
    const c = createSocket("udp4");
    let atC = 0;
    c.on("message", (packet) => {
      if (decodeDatagram(packet, key).ok) atC += 1;
    });
    try {
      member.bind("127.0.0.1", port);
      await new Promise<void>((resolve) => c.bind(port, "127.0.0.3", resolve));
      member.setPeers(new Map([["b", "127.0.0.2"], ["c", "127.0.0.3"]]), port);
      member.setSelf(7, true, true, false);
      // Timers far off: only the refusal can end this probe within the wait, and it ends it as unanswered.
      member.watchProbe("b", 21, 30_000, 30_000);
      member.send(encodeUnsigned({ header: { sender: "a", receiver: "b", session: 1, seq: 0, sentAt: Date.now() }, message: { type: "ping", seq: 21, target: "b", updates: [] } }), "127.0.0.2", port);
      await waitFor("the refusal", () => timeouts.length === 1);
      assert.deepEqual(timeouts, [true]);
      assert.equal(member.stats().refusedProbes, 1);
      assert.equal(member.stats().probeRetries, 0, "a refused probe is not retried");
      // Pings go from a socket of their own, where each refusal leaves an error pending that fails its next send,
      // to anyone: the ping is sent again. (Gossip goes from the membership socket, which never holds one.)
      const ping = (to: string, seq: number) => encodeUnsigned({ header: { sender: "a", receiver: to, session: 1, seq: 0, sentAt: Date.now() }, message: { type: "ping", seq, target: to, updates: [] } });
      for (let i = 0; i < 10; i++) {
        member.send(ping("b", 100 + i), "127.0.0.2", port);
        member.send(ping("c", 200 + i), "127.0.0.3", port);
        member.send(encodeUnsigned({ header: { sender: "a", receiver: "b", session: 1, seq: 0, sentAt: Date.now() }, message: { type: "gossip", updates: [] } }), "127.0.0.2", port);
        member.send(encodeUnsigned({ header: { sender: "a", receiver: "c", session: 1, seq: 0, sentAt: Date.now() }, message: { type: "gossip", updates: [] } }), "127.0.0.3", port);
      }
      await waitFor("c to get all 20", () => atC === 20);
      assert.deepEqual(timeouts, [true], "refusals of datagrams other than the watched probe's are not reported");
      // A probe of a member that answers is not refused.
      member.watchProbe("c", 22, 30_000, 30_000);
      member.send(encodeUnsigned({ header: { sender: "a", receiver: "c", session: 1, seq: 0, sentAt: Date.now() }, message: { type: "ping", seq: 22, target: "c", updates: [] } }), "127.0.0.3", port);
      await waitFor("c to get the ping", () => atC === 21);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(timeouts, [true]);
    } finally {
      c.close();
      member.close();
    }
  });
});
