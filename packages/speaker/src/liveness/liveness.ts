// Typed wrapper over the addon's liveness thread (native/liveness.c): ARP/NDP answers and membership
// acks that keep going while the JavaScript event loop is stalled, and stop with the process.
// JavaScript decides (which addresses, which peers, this node's record); the thread executes.
import { ipv4ToBytes, ipv6ToBytes } from "../l2/address-bytes.ts";
import { arpRequestFilter, encodeBpfProgram, neighborSolicitationFilter } from "../l2/bpf.ts";
import { loadSpeakerAddon, PacketSocketError } from "../l2/packet-socket.ts";

interface LivenessAddon {
  /** `packet` null: the watched probe went unanswered, or its target refused it (`acked` then says refused). */
  memberOpen(self: string, key: Buffer, session: number, maxSkewMs: number, onDatagram: (packet: Buffer | null, acked: boolean, authentic: boolean, replayed: boolean, incarnation: number) => void): unknown;
  memberBind(handle: unknown, address: string, port: number): void;
  memberSetPeers(handle: unknown, names: string[], addresses: string[], port: number): void;
  memberSetSelf(handle: unknown, incarnation: number, ready: boolean, answering: boolean, news: boolean): void;
  memberSend(handle: unknown, packet: Buffer, address: string, port: number): void;
  memberSetKnown(handle: unknown, names: string[], incarnations: number[], up: boolean[]): void;
  memberWatchProbe(handle: unknown, target: string, seq: number, retryAfterMs: number, timeoutAfterMs: number): void;
  memberProbeAcked(handle: unknown, seq: number): boolean;
  memberStats(handle: unknown): NativeMemberStats;
  memberClose(handle: unknown): void;
  responderOpen(ifindex: number, mac: Buffer, arpFilter: Buffer, ndpFilter: Buffer): unknown;
  responderSetOwned(handle: unknown, ipv4: Buffer, ipv6: Buffer): void;
  responderSend(handle: unknown, family: 4 | 6, frame: Buffer): void;
  responderSetMembership(handle: unknown, mac: Buffer, join: boolean): void;
  responderCounters(handle: unknown): NativeResponderCounters;
  responderClose(handle: unknown): void;
  livenessRenew(ms: number): void;
  hmacSha256(key: Buffer, data: Buffer): Buffer;
}

export interface NativeResponderCounters {
  /** [ARP requests, neighbor solicitations] received. */
  requests: [number, number];
  sendErrors: number;
  /** [family, reason, count] of frames dropped as malformed. */
  malformed: Array<[4 | 6, string, number]>;
  /** [address, answers sent] for each address owned now (counted since it became owned). */
  responses: Array<[string, number]>;
}

const addon = (): LivenessAddon => loadSpeakerAddon<LivenessAddon>();

/**
 * How long the thread goes on vouching for this process after the event loop last ran. A loop stalled
 * longer is stuck, not slow: the thread then stops acking and answering, as if the process had died,
 * and peers take its addresses over. Renewed every second while the loop runs.
 */
export const LIVENESS_LEASE_MS = 10_000;
const RENEW_EVERY_MS = 1000;
let renewing: NodeJS.Timeout | undefined;
function keepLease(): void {
  addon().livenessRenew(LIVENESS_LEASE_MS);
  if (renewing !== undefined) return;
  renewing = setInterval(() => addon().livenessRenew(LIVENESS_LEASE_MS), RENEW_EVERY_MS);
  renewing.unref();
}

/** HMAC-SHA256 as the thread computes it (for tests against node:crypto). */
export function nativeHmacSha256(key: Buffer, data: Buffer): Buffer {
  return addon().hmacSha256(key, data);
}

export interface NativeMemberStats {
  acksSent: number;
  ackBytes: number;
  /** Datagrams dropped because the event loop's queue was full. */
  queueDrops: number;
  /** Accepted datagrams the thread kept because they carried no news (see `setKnown`), and their bytes. */
  quietDatagrams: number;
  quietBytes: number;
  /** Probes the thread sent once more (`watchProbe`), and their bytes. */
  probeRetries: number;
  probeRetryBytes: number;
  /** Suspicions (and verdicts) about this node the thread refuted itself, and the bytes of the records it sent. */
  refutations: number;
  refutationBytes: number;
  /** Watched probes whose target's host answered that nothing listens on its port (ICMP port unreachable). */
  refusedProbes: number;
}

/**
 * A membership endpoint: UDP sockets read by the thread, which acks pings to this node itself and keeps back the
 * datagrams that would change nothing in JavaScript ("quiet": a ping it acked, the ack of the watched probe, or
 * gossip, from a peer counted up, carrying only alive records no newer than JavaScript's).
 */
export interface NativeMember {
  /** Listens on one more address (IPv4 or IPv6); throws a system error (EADDRINUSE, …). */
  bind(address: string, port: number): void;
  /** Peers whose pings are acked, and where the acks go. */
  setPeers(peers: ReadonlyMap<string, string>, port: number): void;
  /**
   * This node's record as acks carry it; `answering` false stops the acks (not started, or leaving); `news`: updates
   * wait to be piggybacked, so pings are handed over even when quiet (the core's ack carries the news). The thread
   * never lowers the incarnation: it refutes a suspect or dead record about this node as soon as it reads one (the
   * core refutes only when the event loop runs), going one above it; a `ready` that differs from its record at a
   * number no higher than its own takes the next number. Deliveries tell the number it holds.
   */
  setSelf(incarnation: number, ready: boolean, answering: boolean, news: boolean): void;
  /** Sends a datagram `encodeUnsigned` made: the thread numbers it in sequence with its acks and signs it. */
  send(packet: Buffer, address: string, port: number): void;
  /** JavaScript's view of these peers: its record's incarnation (-1: none) and whether it counts them up. */
  setKnown(names: string[], incarnations: number[], up: boolean[]): void;
  /**
   * The probe JavaScript sent. Unless its ack comes first, the thread pings the target once more after
   * `retryAfterMs` and calls `onProbeTimeout` after `timeoutAfterMs`, or as soon as the target's host answers that
   * nothing listens on its port (ICMP port unreachable); its ack is noted for `probeAcked`.
   */
  watchProbe(target: string, seq: number, retryAfterMs: number, timeoutAfterMs: number): void;
  /** Whether an ack of the watched probe `seq` came (a quiet one reaches JavaScript only this way). */
  probeAcked(seq: number): boolean;
  stats(): NativeMemberStats;
  close(): void;
}

export function openNativeMember(options: {
  self: string;
  key: Buffer;
  session: number;
  maxSkewMs: number;
  /**
   * Every datagram received, in order; `authentic` when it has the membership magic and a valid HMAC under the
   * key (the thread checked it, so only `decodeAuthenticated` remains to do), `acked` when the thread already
   * answered it (a ping), `replayed` when the thread found its number at or below one the sender used before.
   * `incarnation`: this node's as the thread holds it, which may be ahead of the core's (the thread refutes
   * suspicions itself, and numbers anew a record that differs from one it announced: `setSelf`).
   */
  onDatagram(packet: Buffer, acked: boolean, authentic: boolean, replayed: boolean, incarnation: number): void;
  /**
   * The watched probe went unanswered until its timeout, or (`refused`) its target's host answered that nothing
   * listens on its port: the speaker there is not running. An ICMP error can be forged by anyone on the path, so
   * `refused` can only bring the indirect probe forward.
   */
  onProbeTimeout(incarnation: number, refused: boolean): void;
}): NativeMember {
  const native = addon();
  keepLease();
  const handle = native.memberOpen(options.self, options.key, options.session, options.maxSkewMs, (packet, acked, authentic, replayed, incarnation) => {
    if (packet === null) options.onProbeTimeout(incarnation, acked);
    else options.onDatagram(packet, acked, authentic, replayed, incarnation);
  });
  let closed = false;
  return {
    bind: (address, port) => native.memberBind(handle, address, port),
    setPeers(peers, port) {
      native.memberSetPeers(handle, [...peers.keys()], [...peers.values()], port);
    },
    setSelf: (incarnation, ready, answering, news) => native.memberSetSelf(handle, incarnation, ready, answering, news),
    send: (packet, address, port) => native.memberSend(handle, packet, address, port),
    setKnown: (names, incarnations, up) => native.memberSetKnown(handle, names, incarnations, up),
    watchProbe: (target, seq, retryAfterMs, timeoutAfterMs) => native.memberWatchProbe(handle, target, seq, retryAfterMs, timeoutAfterMs),
    probeAcked: (seq) => native.memberProbeAcked(handle, seq),
    stats: () => native.memberStats(handle),
    close() {
      if (closed) return;
      closed = true;
      native.memberClose(handle);
    },
  };
}

/** ARP and NDP answers on one interface, given by the thread from the owned table. */
export interface NativeResponder {
  /** The addresses (canonical text) this interface answers for from now on; replaces the previous set. */
  setOwned(ips: Iterable<string>): void;
  /** Sends a whole frame on the ARP (4) or IPv6 (6) socket: gratuitous ARP, unsolicited NA. */
  send(family: 4 | 6, frame: Buffer): void;
  setMembership(mac: Buffer, join: boolean): void;
  counters(): NativeResponderCounters;
  close(): void;
}

export function openNativeResponder(ifindex: number, mac: Buffer): NativeResponder {
  const native = addon();
  keepLease();
  let handle: unknown;
  try {
    handle = native.responderOpen(ifindex, mac, encodeBpfProgram(arpRequestFilter), encodeBpfProgram(neighborSolicitationFilter));
  } catch (cause) {
    throw new PacketSocketError("open", ifindex, { cause });
  }
  let closed = false;
  return {
    setOwned(ips) {
      const v4: Buffer[] = [];
      const v6: Buffer[] = [];
      for (const ip of ips) if (ip.includes(":")) v6.push(ipv6ToBytes(ip));
        else v4.push(ipv4ToBytes(ip));
      native.responderSetOwned(handle, Buffer.concat(v4), Buffer.concat(v6));
    },
    send(family, frame) {
      try {
        native.responderSend(handle, family, frame);
      } catch (cause) {
        throw new PacketSocketError("send", ifindex, { cause });
      }
    },
    setMembership(mac, join) {
      try {
        native.responderSetMembership(handle, mac, join);
      } catch (cause) {
        throw new PacketSocketError(join ? "joinMulticast" : "leaveMulticast", ifindex, { cause });
      }
    },
    counters: () => native.responderCounters(handle),
    close() {
      if (closed) return;
      closed = true;
      native.responderClose(handle);
    },
  };
}
