// Which speakers are alive: every speaker sends a signed UDP heartbeat to every other node each
// `heartbeatMs` and counts a peer dead `deadAfterMs` after its last one. A starting speaker says
// "joining" for `joinGraceMs` after it learns its peers, long enough to hear every live one, and longer
// while a listed peer has never been heard (up to `silentPeerGraceMs`); then "ready", but it counts itself
// only once no peer it hears is still joining (its view has converged). So it never briefly believes it is
// alone and grabs every address; a stopping one says "leaving" so peers take over at once.
import { createSocket, type Socket } from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";
import type { Logger } from "@bollard/core";
import { Counter, Gauge, type Registry } from "prom-client";
import {
  decodeHeartbeat,
  encodeHeartbeat,
  type HeartbeatRejection,
  judgeHeartbeat,
  liveMembers,
  type MemberState,
  mayBecomeReady,
  type PeerRecord,
  viewConverged,
  recordHeartbeat,
  type Verdict,
} from "./protocol.ts";

export const DEFAULT_MEMBERSHIP_PORT = 7946;
const DROPPED_LOG_INTERVAL_MS = 10_000;

/** The membership key is missing or too short to be a secret. */
export class MembershipKeyError extends Error {
  override name = "MembershipKeyError";
}

export interface MembershipOptions {
  nodeName: string;
  /** Shared secret (≥ 16 bytes) from the memberlist Secret. */
  key: Buffer;
  port: number;
  /** Addresses to listen on (default: 0.0.0.0 and ::). */
  bindAddresses?: string[];
  heartbeatMs?: number;
  deadAfterMs?: number;
  joinGraceMs?: number;
  /** A peer still joining after this long is not waited for (default joinGraceMs + deadAfterMs). */
  joiningLimitMs?: number;
  /**
   * How long after learning its peers a starting node stays joining while it has never heard one of them
   * (default 5 s): that one may be a speaker started at the same time whose process is slower, or dead.
   */
  silentPeerGraceMs?: number;
  /** Clocks of nodes must agree this closely (default 5 s). */
  maxSkewMs?: number;
  logger: Logger;
  registry: Registry;
  /** Called with the new live set whenever it changes. */
  onChange(live: ReadonlySet<string>): void;
}

export interface Membership {
  /** Every other node and the address its speaker listens on (its InternalIP). */
  setPeers(peers: ReadonlyMap<string, string>): void;
  /** Live speakers; this node is among them only once its view has converged. */
  live(): ReadonlySet<string>;
  /** Says "leaving" to every peer, then stops. */
  close(): Promise<void>;
}

export async function startMembership(options: MembershipOptions): Promise<Membership> {
  const { nodeName, key, port, logger } = options;
  if (key.length < 16) throw new MembershipKeyError(`the membership key has ${key.length} bytes; at least 16 are needed`);
  const heartbeatMs = options.heartbeatMs ?? 150;
  const deadAfterMs = options.deadAfterMs ?? 600;
  const joinGraceMs = options.joinGraceMs ?? deadAfterMs + heartbeatMs;
  const joiningLimitMs = options.joiningLimitMs ?? joinGraceMs + deadAfterMs;
  const silentPeerGraceMs = options.silentPeerGraceMs ?? 5000;
  const maxSkewMs = options.maxSkewMs ?? 5000;
  const log = logger.child({ component: "membership" });
  const registers = [options.registry];
  const membersGauge = new Gauge({ name: "bollard_speaker_members", help: "Live speakers as this node sees them, itself included", registers });
  const received = new Counter({
    name: "bollard_speaker_membership_messages_received_total",
    help: "Membership heartbeats received, by what became of them",
    labelNames: ["result"],
    registers,
  });

  const incarnation = Date.now();
  let seq = 0;
  let selfState: MemberState = "joining";
  /** Latched: once this node has counted itself, a peer that starts later does not make it doubt again. */
  let converged = false;
  let peersKnownAt: number | undefined;
  let peers: ReadonlyMap<string, string> = new Map();
  const records = new Map<string, PeerRecord>();
  let live: ReadonlySet<string> = new Set();
  const monotonic = () => performance.now();

  const sockets: Socket[] = [];
  for (const address of options.bindAddresses ?? ["0.0.0.0", "::"]) {
    const socket = createSocket({ type: isIPv6(address) ? "udp6" : "udp4", ipv6Only: isIPv6(address), reuseAddr: false });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(port, address, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      // A node without IPv6 still has IPv4; one without any socket has no membership at all.
      if (isIPv6(address) && sockets.length > 0) {
        log.warn({ err, address }, "not listening on IPv6");
        continue;
      }
      for (const s of sockets) s.close();
      throw err;
    }
    socket.on("message", (packet, remote) => receive(packet, remote.address));
    socket.on("error", (err) => log.warn({ err }, "membership socket error"));
    sockets.push(socket);
  }
  log.info({ port, addresses: options.bindAddresses ?? ["0.0.0.0", "::"], heartbeatMs, deadAfterMs }, "membership listening");

  const socketFor = (address: string) => sockets.find((s) => (isIPv4(address) ? s.address().family === "IPv4" : s.address().family === "IPv6"));

  const broadcast = (state: MemberState) => {
    seq += 1;
    const packet = encodeHeartbeat({ node: nodeName, incarnation, seq, sentAt: Date.now(), state }, key);
    for (const [node, address] of peers) {
      if (node === nodeName) continue;
      socketFor(address)?.send(packet, port, address, (err) => {
        if (err) log.debug({ err, node, address }, "heartbeat not sent");
      });
    }
  };

  const count = (result: Verdict | HeartbeatRejection) => received.inc({ result });

  // Anyone on the LAN can send junk or forgeries at line rate: each kind of drop is logged (at debug)
  // at most once per interval, with how many were dropped meanwhile; the counter has every one.
  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  const logDropped = (kind: Verdict | HeartbeatRejection, fields: Record<string, unknown>, message: string) => {
    const now = monotonic();
    const last = lastLogged.get(kind);
    if (last !== undefined && now - last.at < DROPPED_LOG_INTERVAL_MS) {
      last.suppressed += 1;
      return;
    }
    log.debug({ ...fields, suppressedSinceLast: last?.suppressed ?? 0 }, message);
    lastLogged.set(kind, { at: now, suppressed: 0 });
  };

  function receive(packet: Buffer, from: string): void {
    const decoded = decodeHeartbeat(packet, key);
    if (!decoded.ok) {
      count(decoded.reason);
      logDropped(decoded.reason, { from, reason: decoded.reason }, "dropped membership packet");
      return;
    }
    const { heartbeat } = decoded;
    const previous = records.get(heartbeat.node);
    const verdict = judgeHeartbeat(heartbeat, {
      self: nodeName,
      known: new Set(peers.keys()),
      previous,
      wallNow: Date.now(),
      maxSkewMs,
    });
    count(verdict);
    if (verdict !== "accept") {
      if (verdict !== "self") logDropped(verdict, { from, node: heartbeat.node, verdict }, "ignored heartbeat");
      return;
    }
    records.set(heartbeat.node, recordHeartbeat(previous, heartbeat, monotonic()));
    // A change to leaving or ready should count now, not at the next check.
    if (heartbeat.state !== "ready" || !live.has(heartbeat.node)) recompute();
  }

  function recompute(): void {
    const now = monotonic();
    if (selfState === "joining" && peersKnownAt !== undefined) {
      const others = [...peers.keys()].filter((n) => n !== nodeName);
      const graceOver = now - peersKnownAt >= joinGraceMs;
      const silentPeersWaitOver = now - peersKnownAt >= silentPeerGraceMs;
      if (mayBecomeReady(records, { peers: others, graceOver, silentPeersWaitOver })) {
        selfState = "ready";
        broadcast(selfState);
        log.info({ afterPeersKnownMs: Math.round(now - peersKnownAt), neverHeard: others.filter((n) => !records.has(n)) }, "ready");
      }
    }
    if (!converged && selfState === "ready" && viewConverged(records, { now, deadAfterMs, joiningLimitMs })) {
      converged = true;
      log.info({ afterPeersKnownMs: Math.round(now - (peersKnownAt ?? now)) }, "membership view converged; taking part in elections");
    }
    const next = liveMembers(records, { self: nodeName, selfConverged: converged, now, deadAfterMs });
    if (next.size === live.size && [...next].every((n) => live.has(n))) return;
    const joined = [...next].filter((n) => !live.has(n));
    const left = [...live].filter((n) => !next.has(n));
    live = next;
    membersGauge.set(next.size);
    log.info({ joined, left, members: [...next].sort() }, "membership changed");
    options.onChange(next);
  }

  const heartbeat = setInterval(() => broadcast(selfState), heartbeatMs);
  // Checking four times per heartbeat bounds detection at deadAfterMs + heartbeatMs / 4. The check
  // runs after the loop's I/O phase (setImmediate): when this process was stalled (GC, a busy
  // machine), timers fire before the datagrams that queued meanwhile are read, and judging then would
  // count every peer dead for a moment and grab their addresses.
  const check = setInterval(() => setImmediate(recompute), Math.max(10, Math.floor(heartbeatMs / 4)));
  // The grace counts from when the peers are first known: before that no heartbeat can be heard.
  let graceTimer: NodeJS.Timeout | undefined;

  return {
    setPeers(next) {
      peers = new Map(next);
      for (const node of records.keys()) if (!peers.has(node)) records.delete(node);
      if (peersKnownAt === undefined) {
        peersKnownAt = monotonic();
        broadcast(selfState);
        // The periodic check takes it from here; this one only makes the grace end on time.
        graceTimer = setTimeout(recompute, joinGraceMs);
      }
      recompute();
    },
    live: () => live,
    async close() {
      clearInterval(heartbeat);
      clearInterval(check);
      clearTimeout(graceTimer);
      // Twice, as UDP may drop one; peers then drop this node without waiting for the timeout.
      broadcast("leaving");
      broadcast("leaving");
      await new Promise((resolve) => setTimeout(resolve, 20));
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
