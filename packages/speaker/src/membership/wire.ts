// The membership datagram, with no sockets or clocks. Binary, versioned by its magic, authenticated:
//
//   "BLM2" | sender (u8 length + name) | receiver (name) | session (f64) | datagram seq u32 | sentAt (f64 ms since the epoch)
//   | message type u8 | [probe seq u32] [target name] | u16 update count | updates… | HMAC-SHA256(key, all before)
//   update: kind u8 | node name | incarnation (f64) | alive: ready u8 — suspect, dead: from name
//           — witnessed suspect (kind 3): from name | witnesses u8
//           — aged witnessed suspect (kind 4): from name | witnesses u8 | age u16 (ms the suspicion had run at the sender)
//
// Kind 3 came after the first "BLM2" speakers, kind 4 after kind 3: a speaker drops a datagram carrying a kind it
// does not know as malformed (and understands every other datagram), so while speakers are upgraded a witnessed
// suspicion does not reach the older ones.
// Only holders of the shared key can make one; the signature is checked before anything is parsed.
// Replays are refused by a per-sender (session, seq) high-water mark — session is the sender's start time,
// so it grows across restarts — and by a freshness window on `sentAt`, which bounds replay to a receiver
// that has no high-water mark yet (it just started) to that window. Each datagram names its receiver, so one
// captured on its way to one member cannot be played to another (whose mark for the sender may be lower).
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Message, Update } from "./gossip.ts";

const MAGIC = Buffer.from("BLM2");
const MAC_LENGTH = 32;
/** Below any LAN's MTU once IP and UDP headers are added. */
export const MAX_DATAGRAM = 1400;
const MAX_NAME = 253;

const MESSAGE_TYPES = ["ping", "ping-req", "ack", "nack", "sync", "state", "gossip"] as const;
/** Wire codes: 0 alive, 1 suspect, 2 dead, 3 suspect with witnesses, 4 suspect with witnesses and age. */
const UPDATE_KINDS = ["alive", "suspect", "dead"] as const;
const WITNESSED_SUSPECT = 3;
const AGED_SUSPECT = 4;
/** The longest age the wire carries (u16 ms); a suspicion lasts far less. */
const MAX_AGE_MS = 0xffff;
/** Witnesses are helpers of one indirect probe: a handful; more than this is refused. */
const MAX_WITNESSES = 16;

export interface DatagramHeader {
  sender: string;
  /** The member it is meant for. */
  receiver: string;
  /** The sender's start time (ms since the epoch). */
  session: number;
  /** Grows by one per datagram within a session. */
  seq: number;
  /** The sender's wall clock when sent (ms since the epoch). */
  sentAt: number;
}

export interface Datagram {
  header: DatagramHeader;
  message: Message;
}

export type DatagramRejection = "malformed" | "bad-signature";

/** Names are ASCII (isNodeName), so a name's length is its size. */
const nameSize = (name: string) => 1 + name.length;

/** Bytes an update takes on the wire (the gossip core budgets piggybacked updates with it). */
export function encodedUpdateSize(update: Update): number {
  return 1 + nameSize(update.node) + 8 + (update.kind === "alive" ? 1 : nameSize(update.from) + (witnessesOf(update) > 0 ? 1 : 0) + (ageOf(update) !== undefined ? 2 : 0));
}

const witnessesOf = (update: Update) => (update.kind === "suspect" ? Math.min(MAX_WITNESSES, update.witnesses ?? 0) : 0);
/** A witnessed suspicion's age as the wire carries it; undefined when there is none to send. */
const ageOf = (update: Update) => (update.kind === "suspect" && update.ageMs !== undefined && witnessesOf(update) > 0 ? Math.min(MAX_AGE_MS, Math.max(0, Math.round(update.ageMs))) : undefined);

/** Bytes of the whole datagram `encodeDatagram` makes for this message (for accounting without encoding). */
export function datagramSize(sender: string, receiver: string, message: Message): number {
  let size = MAGIC.length + nameSize(sender) + nameSize(receiver) + 8 + 4 + 8 + 1 + 2 + MAC_LENGTH;
  if (message.type === "ping" || message.type === "ping-req" || message.type === "ack" || message.type === "nack") size += 4;
  if (message.type === "ping" || message.type === "ping-req") size += nameSize(message.target);
  for (const update of message.updates) size += encodedUpdateSize(update);
  return size;
}

/**
 * Bytes left for piggybacked updates in a datagram whose sender, receiver and target names are at most
 * `longestName` bytes long. The membership budgets with the cluster's longest name: budgeting for 253-byte
 * names left 575 bytes where a cluster of short names has 1,300, and a thousand members starting together
 * spread their news in twice as many datagrams.
 */
export function piggybackBudget(longestName: number): number {
  return MAX_DATAGRAM - (MAGIC.length + 3 * (1 + Math.min(MAX_NAME, longestName)) + 8 + 4 + 8 + 1 + 4 + 2 + MAC_LENGTH);
}

/** Bytes left for piggybacked updates in a datagram whose names are as long as names can be. */
export const PIGGYBACK_BUDGET = piggybackBudget(MAX_NAME);

/**
 * A node name the wire can carry (a DNS subdomain, as Node names are): /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, at
 * most 253 characters. Checked a character code at a time (every name of every datagram is checked on its way
 * in and out; the regular expression and the string it needed were a twentieth of the membership's CPU).
 */
export function isNodeName(name: string): boolean {
  const length = name.length;
  if (length === 0 || length > MAX_NAME) return false;
  for (let i = 0; i < length; i++) if (!nameCode(name.charCodeAt(i), i === 0 || i === length - 1)) return false;
  return true;
}

/** Whether a character code may stand in a node name: a-z, 0-9, and inside the name also "-" and ".". */
const nameCode = (c: number, end: boolean) => (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (!end && (c === 0x2d || c === 0x2e));

export function encodeDatagram(datagram: Datagram, key: Buffer): Buffer {
  const packet = encodeUnsigned(datagram);
  createHmac("sha256", key).update(packet.subarray(0, packet.length - MAC_LENGTH)).digest().copy(packet, packet.length - MAC_LENGTH);
  return packet;
}

/**
 * The datagram with its MAC left as zeros, for a sender that signs it itself: the liveness thread numbers and
 * signs every datagram the membership sends, so signing here too was wasted (at a thousand members in one
 * process, node:crypto's per-call key preparation was a sixth of the CPU).
 */
export function encodeUnsigned(datagram: Datagram): Buffer {
  const { header, message } = datagram;
  // One buffer written in place: this runs for every datagram sent.
  const w = new Writer(MAX_DATAGRAM);
  w.bytes(MAGIC);
  w.name(header.sender);
  w.name(header.receiver);
  w.f64(header.session);
  w.u32(header.seq);
  w.f64(header.sentAt);
  w.u8(MESSAGE_TYPES.indexOf(message.type));
  if (message.type === "ping" || message.type === "ping-req" || message.type === "ack" || message.type === "nack") w.u32(message.seq);
  if (message.type === "ping" || message.type === "ping-req") w.name(message.target);
  w.u16(message.updates.length);
  for (const update of message.updates) {
    const witnesses = witnessesOf(update);
    const age = ageOf(update);
    w.u8(age !== undefined ? AGED_SUSPECT : witnesses > 0 ? WITNESSED_SUSPECT : UPDATE_KINDS.indexOf(update.kind));
    w.name(update.node);
    w.f64(update.incarnation);
    if (update.kind === "alive") w.u8(update.ready ? 1 : 0);
    else w.name(update.from);
    if (witnesses > 0) w.u8(witnesses);
    if (age !== undefined) w.u16(age);
  }
  w.buffer.fill(0, w.offset, w.offset + MAC_LENGTH);
  return w.buffer.subarray(0, w.offset + MAC_LENGTH);
}

/** Whether `packet` has the size and magic of a membership datagram (its signature aside). */
export function looksLikeDatagram(packet: Buffer): boolean {
  return packet.length >= MAGIC.length + MAC_LENGTH + 1 && packet.length <= MAX_DATAGRAM && packet.subarray(0, MAGIC.length).equals(MAGIC);
}

export function decodeDatagram(packet: Buffer, key: Buffer): { ok: true; datagram: Datagram } | { ok: false; reason: DatagramRejection } {
  if (!looksLikeDatagram(packet)) return { ok: false, reason: "malformed" };
  const signed = packet.subarray(0, packet.length - MAC_LENGTH);
  const mac = packet.subarray(packet.length - MAC_LENGTH);
  // The signature is checked before the body is parsed: nothing unauthenticated is interpreted.
  if (!timingSafeEqual(createHmac("sha256", key).update(signed).digest(), mac)) return { ok: false, reason: "bad-signature" };
  return decodeAuthenticated(packet);
}

/**
 * Parses a datagram whose magic, size and HMAC were already checked (by the liveness thread, or by
 * `decodeDatagram`): never call it on bytes nobody authenticated.
 */
export function decodeAuthenticated(packet: Buffer): { ok: true; datagram: Datagram } | { ok: false; reason: "malformed" } {
  const signed = packet.subarray(0, packet.length - MAC_LENGTH);
  try {
    const reader = new Reader(signed, MAGIC.length);
    const header: DatagramHeader = { sender: reader.name(), receiver: reader.name(), session: reader.integer(), seq: reader.u32(), sentAt: reader.integer() };
    const type = MESSAGE_TYPES[reader.u8()];
    if (type === undefined) return { ok: false, reason: "malformed" };
    const seq = type === "ping" || type === "ping-req" || type === "ack" || type === "nack" ? reader.u32() : 0;
    const target = type === "ping" || type === "ping-req" ? reader.name() : "";
    const count = reader.u16();
    const updates: Update[] = [];
    for (let i = 0; i < count; i++) {
      const code = reader.u8();
      const kind = code === WITNESSED_SUSPECT || code === AGED_SUSPECT ? "suspect" : UPDATE_KINDS[code];
      const node = reader.name();
      const incarnation = reader.integer();
      if (code === WITNESSED_SUSPECT || code === AGED_SUSPECT) {
        const from = reader.name();
        const witnesses = reader.u8();
        if (witnesses === 0 || witnesses > MAX_WITNESSES) return { ok: false, reason: "malformed" };
        if (code === AGED_SUSPECT) updates.push({ kind: "suspect", node, incarnation, from, witnesses, ageMs: reader.u16() });
        else updates.push({ kind: "suspect", node, incarnation, from, witnesses });
      } else if (kind === "alive") {
        const ready = reader.u8();
        if (ready > 1) return { ok: false, reason: "malformed" };
        updates.push({ kind, node, incarnation, ready: ready === 1 });
      } else if (kind === "suspect" || kind === "dead") {
        updates.push({ kind, node, incarnation, from: reader.name() });
      } else {
        return { ok: false, reason: "malformed" };
      }
    }
    if (!reader.atEnd()) return { ok: false, reason: "malformed" };
    let message: Message;
    if (type === "ping" || type === "ping-req") message = { type, seq, target, updates };
    else if (type === "ack" || type === "nack") message = { type, seq, updates };
    else message = { type, updates };
    return { ok: true, datagram: { header, message } };
  } catch (err) {
    if (err instanceof MalformedDatagram) return { ok: false, reason: "malformed" };
    throw err;
  }
}

export type Verdict = "accept" | "replay" | "stale" | "self" | "unknown-node" | "misdirected";

export interface SenderMark {
  session: number;
  seq: number;
}

/**
 * Whether to believe an authentic datagram. `wallNow` is this node's wall clock; clocks must agree within
 * `maxSkewMs` (NTP), which also bounds how long a captured datagram could be replayed to a freshly
 * restarted receiver that has no mark for its sender yet.
 */
export function judgeDatagram(
  header: DatagramHeader,
  context: { self: string; known: ReadonlySet<string>; previous: SenderMark | undefined; wallNow: number; maxSkewMs: number },
): Verdict {
  if (header.sender === context.self) return "self";
  if (!context.known.has(header.sender)) return "unknown-node";
  if (header.receiver !== context.self) return "misdirected";
  if (Math.abs(context.wallNow - header.sentAt) > context.maxSkewMs) return "stale";
  const previous = context.previous;
  if (previous !== undefined) {
    if (header.session < previous.session) return "replay";
    if (header.session === previous.session && header.seq <= previous.seq) return "replay";
  }
  return "accept";
}

class MalformedDatagram extends Error {
  override name = "MalformedDatagram";
}

class Reader {
  private offset: number;
  private readonly buffer: Buffer;
  constructor(buffer: Buffer, offset: number) {
    this.buffer = buffer;
    this.offset = offset;
  }
  private take(n: number): number {
    if (this.offset + n > this.buffer.length) throw new MalformedDatagram("truncated");
    const at = this.offset;
    this.offset += n;
    return at;
  }
  u8(): number {
    return this.buffer.readUInt8(this.take(1));
  }
  u16(): number {
    return this.buffer.readUInt16BE(this.take(2));
  }
  u32(): number {
    return this.buffer.readUInt32BE(this.take(4));
  }
  integer(): number {
    const value = this.buffer.readDoubleBE(this.take(8));
    if (!Number.isSafeInteger(value) || value < 0) throw new MalformedDatagram("not a non-negative integer");
    return value;
  }
  name(): string {
    const length = this.u8();
    const at = this.take(length);
    if (length === 0) throw new MalformedDatagram("not a node name");
    // The bytes are checked before a string is made of them (ASCII, so latin1 is the same as UTF-8).
    for (let i = 0; i < length; i++) if (!nameCode(this.buffer[at + i] as number, i === 0 || i === length - 1)) throw new MalformedDatagram("not a node name");
    return this.buffer.toString("latin1", at, at + length);
  }
  atEnd(): boolean {
    return this.offset === this.buffer.length;
  }
}

class Writer {
  readonly buffer: Buffer;
  offset = 0;
  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }
  private room(n: number): number {
    if (this.offset + n > this.buffer.length - MAC_LENGTH) throw new RangeError(`a membership datagram is limited to ${MAX_DATAGRAM} bytes`);
    const at = this.offset;
    this.offset += n;
    return at;
  }
  bytes(b: Buffer): void {
    b.copy(this.buffer, this.room(b.length));
  }
  u8(n: number): void {
    this.buffer.writeUInt8(n, this.room(1));
  }
  u16(n: number): void {
    this.buffer.writeUInt16BE(n, this.room(2));
  }
  u32(n: number): void {
    this.buffer.writeUInt32BE(n, this.room(4));
  }
  f64(n: number): void {
    this.buffer.writeDoubleBE(n, this.room(8));
  }
  name(value: string): void {
    if (!isNodeName(value)) throw new RangeError(`not a node name: ${JSON.stringify(value)}`);
    // A node name is ASCII: its length is its size, and each character one byte (faster than Buffer#write for
    // names this short).
    const length = value.length;
    this.u8(length);
    const at = this.room(length);
    for (let i = 0; i < length; i++) this.buffer[at + i] = value.charCodeAt(i);
  }
}
