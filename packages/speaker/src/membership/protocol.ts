// The membership wire format and its rules, with no sockets or clocks: every function takes `now`.
// A heartbeat is "BLM1" + JSON body + HMAC-SHA256(key, "BLM1" + body). Only holders of the shared key
// can make one, and replays are refused by a per-sender (incarnation, sequence) high-water mark plus
// a freshness window on the sender's timestamp.
import { createHmac, timingSafeEqual } from "node:crypto";

const MAGIC = Buffer.from("BLM1");
const MAC_LENGTH = 32;
const MAX_PACKET = 1024;

export type MemberState = "joining" | "ready" | "leaving";

export interface Heartbeat {
  node: string;
  /** Start time of the sending process (ms since the epoch): grows across restarts. */
  incarnation: number;
  /** Grows by one per heartbeat within an incarnation. */
  seq: number;
  /** Sender's wall clock when sent (ms since the epoch). */
  sentAt: number;
  state: MemberState;
}

export type HeartbeatRejection = "malformed" | "bad-signature";

export function encodeHeartbeat(heartbeat: Heartbeat, key: Buffer): Buffer {
  const body = Buffer.from(JSON.stringify(heartbeat));
  const signed = Buffer.concat([MAGIC, body]);
  return Buffer.concat([signed, createHmac("sha256", key).update(signed).digest()]);
}

export function decodeHeartbeat(packet: Buffer, key: Buffer): { ok: true; heartbeat: Heartbeat } | { ok: false; reason: HeartbeatRejection } {
  if (packet.length < MAGIC.length + 2 + MAC_LENGTH || packet.length > MAX_PACKET || !packet.subarray(0, MAGIC.length).equals(MAGIC)) {
    return { ok: false, reason: "malformed" };
  }
  const signed = packet.subarray(0, packet.length - MAC_LENGTH);
  const mac = packet.subarray(packet.length - MAC_LENGTH);
  // The signature is checked before the body is parsed: nothing unauthenticated reaches JSON.parse.
  if (!timingSafeEqual(createHmac("sha256", key).update(signed).digest(), mac)) return { ok: false, reason: "bad-signature" };
  let body: unknown;
  try {
    body = JSON.parse(signed.subarray(MAGIC.length).toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed" };
  }
  const h = body as Partial<Heartbeat>;
  if (
    typeof h.node !== "string" ||
    h.node === "" ||
    !Number.isSafeInteger(h.incarnation) ||
    !Number.isSafeInteger(h.seq) ||
    !Number.isSafeInteger(h.sentAt) ||
    (h.state !== "joining" && h.state !== "ready" && h.state !== "leaving")
  ) {
    return { ok: false, reason: "malformed" };
  }
  return { ok: true, heartbeat: { node: h.node, incarnation: h.incarnation as number, seq: h.seq as number, sentAt: h.sentAt as number, state: h.state } };
}

export interface PeerRecord {
  incarnation: number;
  seq: number;
  state: MemberState;
  /** Receiver's monotonic clock (ms) when the last accepted heartbeat arrived. */
  heardAt: number;
  /** Receiver's monotonic clock (ms) when this incarnation was first heard in its current state. */
  stateSince: number;
}

/** The record after accepting `heartbeat` at `now`: `stateSince` survives repeats of the same state. */
export function recordHeartbeat(previous: PeerRecord | undefined, heartbeat: Heartbeat, now: number): PeerRecord {
  const sameState = previous !== undefined && previous.incarnation === heartbeat.incarnation && previous.state === heartbeat.state;
  return {
    incarnation: heartbeat.incarnation,
    seq: heartbeat.seq,
    state: heartbeat.state,
    heardAt: now,
    stateSince: sameState ? previous.stateSince : now,
  };
}

export type Verdict = "accept" | "replay" | "stale" | "self" | "unknown-node";

/**
 * Whether to believe an authentic heartbeat. `wallNow` is this node's wall clock; clocks must agree
 * within `maxSkewMs` (NTP), which also bounds how long a captured packet could be replayed to a
 * freshly restarted receiver that has no high-water mark yet.
 */
export function judgeHeartbeat(
  heartbeat: Heartbeat,
  context: { self: string; known: ReadonlySet<string>; previous: PeerRecord | undefined; wallNow: number; maxSkewMs: number },
): Verdict {
  if (heartbeat.node === context.self) return "self";
  if (!context.known.has(heartbeat.node)) return "unknown-node";
  if (Math.abs(context.wallNow - heartbeat.sentAt) > context.maxSkewMs) return "stale";
  const previous = context.previous;
  if (previous !== undefined) {
    if (heartbeat.incarnation < previous.incarnation) return "replay";
    if (heartbeat.incarnation === previous.incarnation && heartbeat.seq <= previous.seq) return "replay";
  }
  return "accept";
}

/**
 * Whether a starting node may say it is ready (and so be counted by its peers): its join grace is over,
 * and it has heard every listed peer — or waited `silentPeerGraceMs` for those it has not, which are dead or
 * speakers started at the same time whose process is slower. Waiting here, still `joining`, costs nothing:
 * its peers keep answering for what it would win.
 */
export function mayBecomeReady(records: ReadonlyMap<string, PeerRecord>, context: { peers: Iterable<string>; graceOver: boolean; silentPeersWaitOver: boolean }): boolean {
  if (!context.graceOver) return false;
  if (context.silentPeersWaitOver) return true;
  for (const peer of context.peers) if (!records.has(peer)) return false;
  return true;
}

/**
 * Whether a ready node may trust its view enough to count itself and run an election: no peer heard
 * within `deadAfterMs` is still joining — unless it has been joining longer than `joiningLimitMs` (a stuck
 * process). Without this, of two speakers started together the one that becomes ready first sees the other
 * still joining, believes it is alone and announces every address for a moment. (Peers cannot wait for each
 * other before saying ready: two starting together would wait forever.)
 */
export function viewConverged(records: ReadonlyMap<string, PeerRecord>, context: { now: number; deadAfterMs: number; joiningLimitMs: number }): boolean {
  for (const record of records.values()) {
    if (record.state !== "joining" || context.now - record.heardAt > context.deadAfterMs) continue;
    if (context.now - record.stateSince <= context.joiningLimitMs) return false;
  }
  return true;
}

/** Nodes alive right now: heard from within `deadAfterMs` and ready; this node once its view has converged. */
export function liveMembers(
  records: ReadonlyMap<string, PeerRecord>,
  context: { self: string; selfConverged: boolean; now: number; deadAfterMs: number },
): Set<string> {
  const live = new Set<string>();
  if (context.selfConverged) live.add(context.self);
  for (const [node, record] of records) {
    if (record.state === "ready" && context.now - record.heardAt <= context.deadAfterMs) live.add(node);
  }
  return live;
}
