// The membership datagram: round trips, sizes, forgeries, garbage and the replay rules.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { seededRandom } from "@bollard/core";
import type { Message, Update } from "../src/membership/gossip.ts";
import {
  type DatagramHeader,
  datagramSize,
  decodeAuthenticated,
  decodeDatagram,
  encodeDatagram,
  encodedUpdateSize,
  encodeUnsigned,
  isNodeName,
  judgeDatagram,
  looksLikeDatagram,
  MAX_DATAGRAM,
  PIGGYBACK_BUDGET,
  piggybackBudget,
} from "../src/membership/wire.ts";

const key = Buffer.from("0123456789abcdef0123456789abcdef");
const header: DatagramHeader = { sender: "node-1", receiver: "node-9", session: 1_764_633_600_000, seq: 7, sentAt: 1_764_633_650_123 };
const updates: Update[] = [
  { kind: "alive", node: "node-2", incarnation: 1_764_633_600_001, ready: true },
  { kind: "alive", node: "node-3", incarnation: 5, ready: false },
  { kind: "suspect", node: "node-4", incarnation: 9, from: "node-1" },
  { kind: "suspect", node: "node-6", incarnation: 3, from: "node-1", witnesses: 2 },
  { kind: "suspect", node: "node-7", incarnation: 3, from: "node-2", witnesses: 3, ageMs: 137 },
  { kind: "dead", node: "node-5.example.com", incarnation: 0, from: "node-5.example.com" },
];

const sign = (body: Buffer) => Buffer.concat([body, createHmac("sha256", key).update(body).digest()]);

describe("membership datagrams", () => {
  const messages: Message[] = [
    { type: "ping", seq: 1, target: "node-2", updates },
    { type: "ping-req", seq: 4_294_967_295, target: "node-3", updates: [] },
    { type: "ack", seq: 0, updates },
    { type: "nack", seq: 12, updates: [] },
    { type: "sync", updates: updates.slice(0, 1) },
    { type: "state", updates },
    { type: "gossip", updates },
  ];
  for (const message of messages) {
    it(`round-trips a ${message.type} with ${message.updates.length} updates`, () => {
      const packet = encodeDatagram({ header, message }, key);
      assert.deepEqual(decodeDatagram(packet, key), { ok: true, datagram: { header, message } });
      assert.equal(datagramSize(header.sender, header.receiver, message), packet.length, "datagramSize");
    });
  }

  it("sizes each update exactly as it is encoded", () => {
    const empty = encodeDatagram({ header, message: { type: "gossip", updates: [] } }, key).length;
    for (const update of updates) {
      assert.equal(encodeDatagram({ header, message: { type: "gossip", updates: [update] } }, key).length - empty, encodedUpdateSize(update), update.kind);
    }
  });

  it("a datagram with the longest names and a full piggyback budget fits", () => {
    const long = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    assert.equal(long.length, 253);
    const update: Update = { kind: "suspect", node: long, incarnation: 1, from: long };
    const full: Update[] = [];
    let used = 0;
    while (used + encodedUpdateSize(update) <= PIGGYBACK_BUDGET) {
      full.push(update);
      used += encodedUpdateSize(update);
    }
    const packet = encodeDatagram({ header: { ...header, sender: long, receiver: long }, message: { type: "ping", seq: 1, target: long, updates: full } }, key);
    assert.ok(packet.length <= MAX_DATAGRAM, `${packet.length} bytes`);
    assert.equal(decodeDatagram(packet, key).ok, true);
  });

  it("a suspicion with witnesses is one byte longer, kind 3; none is the plain kind 1 a speaker before witnesses reads", () => {
    const plain: Update = { kind: "suspect", node: "node-4", incarnation: 9, from: "node-1" };
    const at = (update: Update) => encodeDatagram({ header, message: { type: "gossip", updates: [update] } }, key)[typeAt + 3];
    assert.equal(at(plain), 1);
    assert.equal(at({ ...plain, witnesses: 0 }), 1);
    assert.equal(at({ ...plain, witnesses: 3 }), 3);
    assert.equal(encodedUpdateSize({ ...plain, witnesses: 3 }), encodedUpdateSize(plain) + 1);
    const witnessed = encodeDatagram({ header, message: { type: "gossip", updates: [{ ...plain, witnesses: 3 }] } }, key);
    const withWitnesses = (n: number) => {
      const b = Buffer.from(witnessed.subarray(0, witnessed.length - 32));
      b[b.length - 1] = n;
      return sign(b);
    };
    assert.deepEqual(decodeDatagram(withWitnesses(0), key), { ok: false, reason: "malformed" }, "kind 3 with no witness");
    assert.deepEqual(decodeDatagram(withWitnesses(17), key), { ok: false, reason: "malformed" }, "more witnesses than one probe has");
    assert.equal(decodeDatagram(withWitnesses(16), key).ok, true);
  });

  it("a witnessed suspicion with an age is two bytes longer, kind 4; an age without witnesses is not sent", () => {
    const witnessed: Update = { kind: "suspect", node: "node-4", incarnation: 9, from: "node-1", witnesses: 2 };
    const encoded = (update: Update) => encodeDatagram({ header, message: { type: "gossip", updates: [update] } }, key);
    assert.equal(encoded({ ...witnessed, ageMs: 0 })[typeAt + 3], 4);
    assert.equal(encodedUpdateSize({ ...witnessed, ageMs: 0 }), encodedUpdateSize(witnessed) + 2);
    assert.equal(encoded({ ...witnessed, ageMs: 250 }).readUInt16BE(encoded(witnessed).length - 32), 250, "after the witnesses");
    const decoded = (update: Update) => (decodeDatagram(encoded(update), key) as { ok: true; datagram: { message: Message } }).datagram.message.updates[0];
    assert.deepEqual(decoded({ ...witnessed, ageMs: 70_000 }), { ...witnessed, ageMs: 65_535 }, "the longest age the wire carries");
    assert.deepEqual(decoded({ ...witnessed, ageMs: 12.6 }), { ...witnessed, ageMs: 13 });
    const unwitnessed: Update = { kind: "suspect", node: "node-4", incarnation: 9, from: "node-1", ageMs: 250 };
    assert.equal(encoded(unwitnessed)[typeAt + 3], 1);
    assert.deepEqual(decoded(unwitnessed), { kind: "suspect", node: "node-4", incarnation: 9, from: "node-1" });
    const cut = encoded({ ...witnessed, ageMs: 250 });
    assert.deepEqual(decodeDatagram(sign(cut.subarray(0, cut.length - 33)), key), { ok: false, reason: "malformed" }, "an age cut short");
  });

  it("an unsigned datagram (the liveness thread signs it) is the signed one with a zero MAC; parsing after the thread's check", () => {
    const message = messages[0] as Message;
    const signed = encodeDatagram({ header, message }, key);
    const unsigned = encodeUnsigned({ header, message });
    assert.deepEqual(unsigned.subarray(0, -32), signed.subarray(0, -32));
    assert.deepEqual(unsigned.subarray(-32), Buffer.alloc(32));
    assert.deepEqual(decodeAuthenticated(signed), { ok: true, datagram: { header, message } });
    assert.equal(looksLikeDatagram(signed), true);
    assert.equal(looksLikeDatagram(sign(Buffer.from('BLM1{"node":"a"}'))), false);
  });

  it("budgets piggybacked updates for the cluster's longest name", () => {
    assert.equal(piggybackBudget(253), PIGGYBACK_BUDGET);
    const name = "n".repeat(12);
    const update: Update = { kind: "suspect", node: name, incarnation: 1, from: name, witnesses: 3 };
    const full: Update[] = [];
    while ((full.length + 1) * encodedUpdateSize(update) <= piggybackBudget(name.length)) full.push(update);
    const packet = encodeDatagram({ header: { ...header, sender: name, receiver: name }, message: { type: "ping", seq: 1, target: name, updates: full } }, key);
    assert.ok(packet.length <= MAX_DATAGRAM && packet.length > MAX_DATAGRAM - encodedUpdateSize(update), `${packet.length} bytes`);
  });

  // The rule is checked a character at a time; the regular expression it replaced is the reference.
  const reference = (name: string) => name.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name);
  const names: Array<[string, boolean]> = [
    ["a", true],
    ["node-1", true],
    ["node-5.example.com", true],
    ["0", true],
    ["a".repeat(253), true],
    ["a".repeat(254), false],
    ["", false],
    ["-a", false],
    ["a-", false],
    [".a", false],
    ["a.", false],
    ["a_b", false],
    ["Node", false],
    ["nodé", false],
    ["a b", false],
    ["a/b", false],
    ["a:b", false],
    ["a--b..c", true],
    ["-", false],
  ];
  for (const [name, valid] of names) {
    it(`${valid ? "takes" : "refuses"} ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}… (${name.length})` : name)} as a node name, in both directions`, () => {
      assert.equal(isNodeName(name), valid);
      assert.equal(reference(name), valid, "the reference agrees");
      const message: Message = { type: "gossip", updates: [{ kind: "alive", node: "node-2", incarnation: 1, ready: true }] };
      if (!valid) {
        assert.throws(() => encodeDatagram({ header: { ...header, sender: name }, message }, key), RangeError);
        return;
      }
      const decoded = decodeDatagram(encodeDatagram({ header: { ...header, sender: name }, message }, key), key);
      assert.equal(decoded.ok && decoded.datagram.header.sender, name);
    });
  }
  // Every byte value in a name, first, inside and last: the decoder refuses exactly what the rule refuses.
  it("decodes a name with any byte in any place only when the rule takes it", () => {
    const named = encodeDatagram({ header: { ...header, sender: "abc" }, message: { type: "gossip", updates: [] } }, key);
    for (let byte = 0; byte < 256; byte++) {
      for (const at of [0, 1, 2]) {
        const body = Buffer.from(named.subarray(0, named.length - 32));
        body[5 + at] = byte;
        const name = Buffer.from("abc").fill(byte, at, at + 1).toString("latin1");
        const decoded = decodeDatagram(sign(body), key);
        assert.equal(decoded.ok, reference(name), `byte ${byte} at ${at}`);
      }
    }
  });

  it("refuses to encode a name that is not a node name", () => {
    assert.throws(() => encodeDatagram({ header: { ...header, sender: "Not A Name" }, message: { type: "gossip", updates: [] } }, key), RangeError);
  });

  it("rejects another key, every flipped bit and every truncation", () => {
    const packet = encodeDatagram({ header, message: messages[0] as Message }, key);
    assert.deepEqual(decodeDatagram(packet, Buffer.from("another key, 16+ bytes long")), { ok: false, reason: "bad-signature" });
    for (let i = 0; i < packet.length; i++) {
      for (const bit of [0, 7]) {
        const flipped = Buffer.from(packet);
        flipped[i] = (flipped[i] as number) ^ (1 << bit);
        const decoded = decodeDatagram(flipped, key);
        assert.equal(decoded.ok, false, `byte ${i} bit ${bit}`);
      }
    }
    for (let length = 0; length < packet.length; length++) assert.equal(decodeDatagram(packet.subarray(0, length), key).ok, false, `${length} bytes`);
  });

  it("rejects 20 000 random datagrams and random mutations of a good one without throwing", () => {
    const random = seededRandom(5);
    const good = encodeDatagram({ header, message: messages[5] as Message }, key);
    for (let i = 0; i < 10_000; i++) {
      const junk = Buffer.alloc(Math.floor(random() * 1600));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(random() * 256);
      if (random() < 0.5 && junk.length >= 4) Buffer.from("BLM2").copy(junk);
      assert.equal(decodeDatagram(junk, key).ok, false);
      const mutated = Buffer.from(good);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
      if (!mutated.equals(good)) assert.equal(decodeDatagram(mutated, key).ok, false);
    }
  });

  it("rejects the old heartbeat format and oversized datagrams", () => {
    assert.deepEqual(decodeDatagram(sign(Buffer.from('BLM1{"node":"a"}')), key), { ok: false, reason: "malformed" });
    const huge = sign(Buffer.concat([Buffer.from("BLM2"), Buffer.alloc(MAX_DATAGRAM)]));
    assert.deepEqual(decodeDatagram(huge, key), { ok: false, reason: "malformed" });
  });

  // Signed with the right key (a peer with a bug, or a newer version): still never trusted.
  const good = encodeDatagram({ header, message: { type: "gossip", updates: updates.slice(0, 1) } }, key);
  const body = good.subarray(0, good.length - 32);
  const typeAt = 4 + 1 + header.sender.length + 1 + header.receiver.length + 8 + 4 + 8;
  const withByte = (at: number, value: number) => {
    const b = Buffer.from(body);
    b[at] = value;
    return b;
  };
  const withDouble = (at: number, value: number) => {
    const b = Buffer.from(body);
    b.writeDoubleBE(value, at);
    return b;
  };
  const malformed: Array<[string, Buffer]> = [
    ["an unknown message type", withByte(typeAt, 9)],
    ["an unknown update kind", withByte(typeAt + 3, 4)],
    ["readiness other than 0 or 1", withByte(body.length - 1, 2)],
    ["a fractional session", withDouble(4 + 1 + header.sender.length + 1 + header.receiver.length, 1.5)],
    ["a negative incarnation", withDouble(typeAt + 3 + 1 + 1 + "node-2".length, -1)],
    ["an incarnation that is not a number", withDouble(typeAt + 3 + 1 + 1 + "node-2".length, Number.NaN)],
    ["an upper-case name", Buffer.from(body.toString("latin1").replace("node-2", "NODE-2"), "latin1")],
    ["trailing bytes", Buffer.concat([body, Buffer.of(0)])],
    ["more updates announced than present", withByte(typeAt + 2, 2)],
  ];
  for (const [what, bytes] of malformed) {
    it(`rejects a signed datagram with ${what}`, () => {
      assert.deepEqual(decodeDatagram(sign(bytes), key), { ok: false, reason: "malformed" });
    });
  }

  const context = { self: "node-1", known: new Set(["node-2", "node-3"]), wallNow: 50_100, maxSkewMs: 5000 };
  const from2: DatagramHeader = { sender: "node-2", receiver: "node-1", session: 1000, seq: 7, sentAt: 50_000 };
  const previous = { session: 1000, seq: 7 };
  const cases: Array<[string, Partial<DatagramHeader>, typeof previous | undefined, string]> = [
    ["first datagram of a peer", {}, undefined, "accept"],
    ["next sequence number", { seq: 8 }, previous, "accept"],
    ["a gap in sequence numbers (datagrams to other members)", { seq: 90 }, previous, "accept"],
    ["same sequence number again", { seq: 7 }, previous, "replay"],
    ["older sequence number", { seq: 3 }, previous, "replay"],
    ["a restarted peer (new session, seq 1)", { session: 2000, seq: 1 }, previous, "accept"],
    ["an old session", { session: 999, seq: 100 }, previous, "replay"],
    ["sent 6 s ago", { sentAt: 44_000 }, undefined, "stale"],
    ["sent 6 s in the future", { sentAt: 56_200 }, undefined, "stale"],
    ["our own name", { sender: "node-1" }, undefined, "self"],
    ["a node without a Node object", { sender: "intruder" }, undefined, "unknown-node"],
    ["meant for another member (captured and played to this one)", { receiver: "node-3", seq: 99 }, previous, "misdirected"],
  ];
  for (const [what, change, prev, verdict] of cases) {
    it(`${what}: ${verdict}`, () => {
      assert.equal(judgeDatagram({ ...from2, ...change }, { ...context, previous: prev }), verdict);
    });
  }
});
