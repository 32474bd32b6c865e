// Which speakers are alive, over UDP: the gossip core (gossip.ts) decides, this shell owns the sockets,
// the clock and the timer, signs and checks datagrams (wire.ts), and tells the speaker when the live set
// changes. Each member probes one other per period and gossips what changed to a few, so per-node traffic
// grows with log N, not N. A starting speaker says "joining" until it has the cluster's view, then "ready",
// but counts itself only once no peer it hears is still joining (its view has converged); a stopping one
// says it left so its peers take over at once. The sockets belong to the addon's liveness thread, which
// acks pings to this node itself and refutes suspicions of it (native/liveness.c), so a stalled event loop
// does not look like a death; it also keeps back the datagrams that carry no news, and retries and times the
// probe, so a quiet cluster wakes the event loop about once per probe.
import { isIPv6 } from "node:net";
import type { Logger } from "@bollard/core";
import { Counter, Gauge, type Registry } from "prom-client";
import {
  adoptIncarnation,
  createGossip,
  DEFAULT_GOSSIP_TIMING,
  type GossipState,
  type GossipTiming,
  isLive,
  leave,
  liveMembers,
  nextDeadline,
  probeRefused,
  receive,
  type Step,
  setPeers,
  tick,
} from "./gossip.ts";
import { type NativeMember, openNativeMember } from "../liveness/liveness.ts";
import {
  type DatagramRejection,
  decodeAuthenticated,
  encodedUpdateSize,
  encodeUnsigned,
  isNodeName,
  judgeDatagram,
  looksLikeDatagram,
  PIGGYBACK_BUDGET,
  piggybackBudget,
  type Verdict,
} from "./wire.ts";

export const DEFAULT_MEMBERSHIP_PORT = 7946;
const DROPPED_LOG_INTERVAL_MS = 10_000;

/** The membership key is missing or too short to be a secret. */
export class MembershipKeyError extends Error {
  override name = "MembershipKeyError";
}

/** This node's name cannot be carried by the membership protocol (it is not a DNS subdomain). */
export class MembershipNameError extends Error {
  override name = "MembershipNameError";
}

export interface MembershipOptions extends Partial<GossipTiming> {
  nodeName: string;
  /** Shared secret (≥ 16 bytes) from the memberlist Secret. */
  key: Buffer;
  port: number;
  /** Addresses to listen on (default: 0.0.0.0 and ::). */
  bindAddresses?: string[];
  /** Clocks of nodes must agree this closely (default 5 s). */
  maxSkewMs?: number;
  logger: Logger;
  registry: Registry;
  /** Called with the new live set whenever it changes (a new set each time, never changed afterwards), and what changed. */
  onChange(live: ReadonlySet<string>, change: LiveChange): void;
}

/** A member dropped is published at once, unless the last publish was less than this ago (`run`). */
const PUBLISH_DEATHS_EVERY_MS = 100;

/** The members a published live set gained and lost. */
export interface LiveChange {
  joined: readonly string[];
  left: readonly string[];
}

export interface Membership {
  /** Every node of the cluster and the address its speaker listens on (its InternalIP). */
  setPeers(peers: ReadonlyMap<string, string>): void;
  /** Live speakers; this node is among them only once its view has converged. */
  live(): ReadonlySet<string>;
  /** Says it is leaving to a few peers (they spread it), then stops. */
  close(): Promise<void>;
}

export async function startMembership(options: MembershipOptions): Promise<Membership> {
  const { nodeName, key, port, logger } = options;
  if (key.length < 16) throw new MembershipKeyError(`the membership key has ${key.length} bytes; at least 16 are needed`);
  if (!isNodeName(nodeName)) throw new MembershipNameError(`node name ${JSON.stringify(nodeName)} is not a DNS subdomain of at most 253 characters`);
  const maxSkewMs = options.maxSkewMs ?? 5000;
  const timing: GossipTiming = { ...DEFAULT_GOSSIP_TIMING };
  for (const name of Object.keys(timing) as Array<keyof GossipTiming>) {
    const value = options[name];
    if (value !== undefined) timing[name] = value;
  }
  const log = logger.child({ component: "membership" });
  const registers = [options.registry];
  const membersGauge = new Gauge({ name: "bollard_speaker_members", help: "Live speakers as this node sees them, itself included", registers });
  // The per-datagram counts are plain numbers, handed to the counters when they are scraped: a labelled
  // counter's inc hashes its labels, and at a thousand members in one process (the simulation) that was a
  // twentieth of the CPU.
  const receivedBy = new Map<Verdict | DatagramRejection, number>();
  const receivedCounted = new Map<Verdict | DatagramRejection, number>();
  const received = new Counter({
    name: "bollard_speaker_membership_messages_received_total",
    help: "Membership datagrams received, by what became of them",
    labelNames: ["result"],
    registers,
    collect() {
      for (const [result, n] of receivedBy) {
        const delta = n - (receivedCounted.get(result) ?? 0);
        if (delta > 0) received.inc({ result }, delta);
        receivedCounted.set(result, n);
      }
    },
  });
  let sentBytes = 0;
  let receivedBytes = 0;
  let sentBytesCounted = 0;
  let receivedBytesCounted = 0;
  const bytes = new Counter({
    name: "bollard_speaker_membership_bytes_total",
    help: "Membership datagram bytes (UDP payload), the liveness thread's acks included",
    labelNames: ["direction"],
    registers,
    collect() {
      countThreadStats();
      if (sentBytes > sentBytesCounted) bytes.inc({ direction: "sent" }, sentBytes - sentBytesCounted);
      if (receivedBytes > receivedBytesCounted) bytes.inc({ direction: "received" }, receivedBytes - receivedBytesCounted);
      sentBytesCounted = sentBytes;
      receivedBytesCounted = receivedBytes;
    },
  });
  const changes = new Counter({
    name: "bollard_speaker_membership_events_total",
    help: "What this node concluded: suspect, dead, left, alive, refuted (it was suspected), stalled (its own process did not run), refused (a probed member's host said nothing listens on its port)",
    labelNames: ["kind"],
    registers,
  });
  const health = new Gauge({ name: "bollard_speaker_membership_local_health", help: "Lifeguard local health (0 healthy; probe timing is stretched by it + 1)", registers });

  // The start time: it grows across restarts, so it serves as the first incarnation and the session
  // whose datagram numbers peers keep a mark of.
  const session = Date.now();
  const monotonic = () => performance.now();
  // The probe's retry and timeout run in the liveness thread (watchProbe): the event loop wakes for a probe when
  // it starts and, rarely, when it went unanswered, not at its retry and timeout as well.
  const state: GossipState = createGossip(
    { ...timing, maxPiggybackBytes: PIGGYBACK_BUDGET, updateSize: encodedUpdateSize, random: Math.random, externalProbeTimers: true },
    nodeName,
    session,
    monotonic(),
  );
  let peers: ReadonlyMap<string, string> = new Map();
  let live: ReadonlySet<string> = new Set();
  // Members whose liveness may have changed since `live` was last published (the notes name them).
  const touched = new Set<string>();
  let publishing = false;
  // A member dropped since the last publish, and when that was (`run`).
  let deathWaiting = false;
  let publishedAt = Number.NEGATIVE_INFINITY;
  let closed = false;

  // Pings the liveness thread acked already, by sender: their (probe sequence number) whose ack the core
  // is about to make again; only an ack that carries news is still sent.
  let ackedNatively: { from: string; seq: number; incarnation: number; ready: boolean } | undefined;
  const native: NativeMember = openNativeMember({
    self: nodeName,
    key,
    session,
    maxSkewMs,
    onDatagram: (packet, acked, authentic, replayed, incarnation) => {
      onDatagram(packet, acked, authentic, replayed);
      adopt(incarnation);
    },
    onProbeTimeout(incarnation, refused) {
      if (closed) return;
      const now = monotonic();
      if (refused && state.probe?.seq === watchedProbe) {
        changes.inc({ kind: "refused" });
        probeRefused(state, now);
      }
      settleProbe(now);
      run(tick(state, now));
      adopt(incarnation);
    },
  });
  // The thread's number for this node's record, when ahead of the core's (after the datagram was read: the core
  // usually reaches the same number by reading the accusation the thread refuted).
  function adopt(incarnation: number): void {
    if (closed || !(incarnation > state.incarnation)) return;
    log.debug({ incarnation, was: state.incarnation }, "took this node's incarnation from the liveness thread");
    run(adoptIncarnation(state, incarnation, monotonic()));
  }
  const bound: string[] = [];
  for (const address of options.bindAddresses ?? ["0.0.0.0", "::"]) {
    try {
      native.bind(address, port);
      bound.push(address);
    } catch (err) {
      // A node without IPv6 still has IPv4; one without any socket has no membership at all.
      if (isIPv6(address) && bound.length > 0) {
        log.warn({ err, address }, "not listening on IPv6");
        continue;
      }
      native.close();
      throw err;
    }
  }
  log.info({ port, addresses: bound, probeIntervalMs: timing.probeIntervalMs }, "membership listening");
  // This node's record as the thread last had it (incarnation, ready, answering): -1 before the first.
  let selfIncarnation = -1;
  let selfReady = false;
  let selfAnswering = false;
  let selfNews = false;
  let healthSet = -1;
  let ackBytesCounted = 0;
  let quietCounted = 0;
  let quietBytesCounted = 0;
  function countThreadStats(): void {
    // (Nothing awaits between the counter's creation and `native`'s, so no scrape comes before it.)
    const { ackBytes, probeRetryBytes, refutationBytes, quietDatagrams, quietBytes } = native.stats();
    // (The thread's own datagrams: acks, probe retries and refutations.)
    const threadBytes = ackBytes + probeRetryBytes + refutationBytes;
    if (threadBytes > ackBytesCounted) sentBytes += threadBytes - ackBytesCounted;
    ackBytesCounted = threadBytes;
    // The datagrams the thread kept back as quiet were accepted like any other.
    if (quietDatagrams > quietCounted) receivedBy.set("accept", (receivedBy.get("accept") ?? 0) + quietDatagrams - quietCounted);
    if (quietBytes > quietBytesCounted) receivedBytes += quietBytes - quietBytesCounted;
    quietCounted = quietDatagrams;
    quietBytesCounted = quietBytes;
  }

  // What the thread knows of the core's view, so it can keep back datagrams that carry no news ("quiet"): per
  // peer the incarnation of its record and whether it is counted up. Sent when a note names the peer or the
  // peer's own datagram came through, gathered over a step and sent once at its end (before anything else
  // runs, so the thread never goes on taking a member counted dead for up).
  const knownSent = new Map<string, { incarnation: number; up: boolean }>();
  const knownNames: string[] = [];
  const knownIncarnations: number[] = [];
  const knownUp: boolean[] = [];
  function noteKnown(name: string): void {
    const m = state.members.get(name);
    const incarnation = m?.incarnation ?? -1;
    const up = m !== undefined && (m.status === "alive" || m.status === "suspect");
    const sent = knownSent.get(name);
    if (sent !== undefined && sent.incarnation === incarnation && sent.up === up) return;
    knownSent.set(name, { incarnation, up });
    knownNames.push(name);
    knownIncarnations.push(incarnation);
    knownUp.push(up);
  }
  function flushKnown(): void {
    if (knownNames.length === 0) return;
    native.setKnown(knownNames, knownIncarnations, knownUp);
    knownNames.length = 0;
    knownIncarnations.length = 0;
    knownUp.length = 0;
  }

  // The probe the thread watches: its ack, when quiet, stays there until the probe's timeout asks for it.
  let watchedProbe = -1;
  function settleProbe(now: number): void {
    const probe = state.probe;
    if (probe === undefined || probe.seq !== watchedProbe || now < probe.retryAt || !native.probeAcked(probe.seq)) return;
    run(receive(state, probe.target, { type: "ack", seq: probe.seq, updates: [] }, now));
  }

  function run(step: Step): void {
    // The probe is watched before its ping goes out: on a node whose speaker is gone, the ICMP refusal comes back
    // within microseconds, and a refusal the thread read before the watch was lost (it then came from the retry,
    // 40 ms later, in every kill of a traced run).
    const probe = state.probe;
    if (probe !== undefined && probe.seq !== watchedProbe) {
      const now = monotonic();
      native.watchProbe(probe.target, probe.seq, Math.max(0, probe.retryAt - now), Math.max(0, probe.timeoutAt - now));
      watchedProbe = probe.seq;
    }
    for (const { to, message } of step.send) {
      const address = peers.get(to);
      if (address === undefined) continue;
      // The thread sent this ack (with this node's record) already; send it again only for the news.
      // (Unless the ping made this node refute: the thread's ack carried the record from before.)
      const own = message.updates[0];
      if (
        message.type === "ack" &&
        message.updates.length <= 1 &&
        ackedNatively?.from === to &&
        ackedNatively.seq === message.seq &&
        own?.kind === "alive" &&
        own.incarnation === ackedNatively.incarnation &&
        own.ready === ackedNatively.ready
      ) {
        continue;
      }
      // The thread numbers the datagram (in sequence with its own acks) and signs it.
      const packet = encodeUnsigned({ header: { sender: nodeName, receiver: to, session, seq: 0, sentAt: Date.now() }, message });
      sentBytes += packet.length;
      try {
        native.send(packet, address, port);
      } catch (err) {
        log.debug({ err, node: to, address }, "membership datagram not sent");
      }
    }
    ackedNatively = undefined;
    const ready = state.phase === "ready";
    const answering = state.phase !== "leaving" && state.peersKnownAt !== undefined;
    const news = state.fresh.size > 0 || state.queue.size > 0;
    if (state.incarnation !== selfIncarnation || ready !== selfReady || answering !== selfAnswering || news !== selfNews) {
      // (It takes the thread's lock: only when the record changed.)
      native.setSelf(state.incarnation, ready, answering, news);
      selfNews = news;
      selfIncarnation = state.incarnation;
      selfReady = ready;
      selfAnswering = answering;
    }
    for (const note of step.notes) {
      switch (note.kind) {
        case "ready":
          log.info({ afterPeersKnownMs: Math.round(monotonic() - (state.peersKnownAt ?? monotonic())), neverHeard: note.neverHeard.slice(0, 20), neverHeardCount: note.neverHeard.length }, "ready");
          break;
        case "converged":
          touched.add(nodeName);
          log.info({ afterPeersKnownMs: Math.round(monotonic() - (state.peersKnownAt ?? monotonic())) }, "membership view converged; taking part in elections");
          break;
        case "stalled":
          changes.inc({ kind: note.kind });
          log.warn({ ms: note.ms }, "this process did not run for a while; membership deadlines moved by as much");
          break;
        case "refuted":
          changes.inc({ kind: note.kind });
          log.info({ incarnation: note.incarnation, from: note.from }, "refuted a suspicion about this node");
          break;
        case "suspect":
          changes.inc({ kind: note.kind });
          log.debug({ node: note.node, incarnation: note.incarnation, from: note.from }, "suspect");
          break;
        default:
          touched.add(note.node);
          if (note.kind === "dead" || note.kind === "left") deathWaiting = true;
          noteKnown(note.node);
          changes.inc({ kind: note.kind });
          log.debug({ node: note.node, incarnation: note.incarnation, from: note.from }, note.kind);
      }
    }
    if (deathWaiting && monotonic() - publishedAt >= PUBLISH_DEATHS_EVERY_MS) {
      // A member dropped is published at once (failover waits on it), not at the end of the loop's I/O phase:
      // behind a backlog of datagrams (in the simulation at 1,000, a process of 224 members after a stall) that
      // end came a median 232 ms after the death, in a traced kill. At most every PUBLISH_DEATHS_EVERY_MS, so that
      // a partition's hundreds of deaths do not each copy the live set.
      publish(false);
    } else if (touched.size > 0 && !publishing) {
      // Once per turn of the event loop, after the datagrams that arrived together: a joining member hears of
      // a thousand peers in a few hundred datagrams, and a new set per datagram made start-up O(N²) per member.
      publishing = true;
      setImmediate(() => {
        publishing = false;
        if (!closed) publish(false);
      });
    }
    if (state.localHealth !== healthSet) {
      health.set(state.localHealth);
      healthSet = state.localHealth;
    }
    flushKnown();
    arm();
  }

  /** Publishes the live set if it changed: only the members notes named are looked at, unless `all`. */
  function publish(all: boolean): void {
    const names = all ? new Set([...live, ...liveMembers(state)]) : touched;
    deathWaiting = false;
    publishedAt = monotonic();
    const joined: string[] = [];
    const left: string[] = [];
    for (const name of names) {
      const now = isLive(state, name);
      if (now && !live.has(name)) joined.push(name);
      else if (!now && live.has(name)) left.push(name);
    }
    touched.clear();
    if (joined.length === 0 && left.length === 0) return;
    const next = new Set(live);
    for (const name of joined) next.add(name);
    for (const name of left) next.delete(name);
    live = next;
    membersGauge.set(next.size);
    log.info({ joined: joined.length <= 50 ? joined : undefined, left: left.length <= 50 ? left : undefined, members: next.size <= 50 ? [...next].sort() : undefined, count: next.size }, "membership changed");
    options.onChange(next, { joined, left });
  }

  // One timer, armed for the core's next deadline. It runs the core after the loop's I/O phase
  // (setImmediate): after a stall, the datagrams that queued meanwhile are read before any deadline is judged.
  let timer: NodeJS.Timeout | undefined;
  let armedFor = Number.POSITIVE_INFINITY;
  function arm(): void {
    if (closed || state.peersKnownAt === undefined) return;
    // The core leaves its next deadline in `expectedBy` at the end of each step (for its stall check): the same
    // value, without walking the relays and suspects again.
    const at = state.expectedBy ?? nextDeadline(state);
    // A later deadline re-arms too: a probe's ack comes long before its timeout, and a timer left for the timeout
    // woke the process for nothing five times a second per member (a wake-up costs more than re-arming).
    if (timer !== undefined && at === armedFor) return;
    clearTimeout(timer);
    armedFor = at;
    timer = setTimeout(
      () => {
        timer = undefined;
        armedFor = Number.POSITIVE_INFINITY;
        setImmediate(() => {
          if (closed) return;
          const now = monotonic();
          settleProbe(now);
          run(tick(state, now));
        });
      },
      Math.max(0, at - monotonic()),
    );
  }

  const count = (result: Verdict | DatagramRejection) => receivedBy.set(result, (receivedBy.get(result) ?? 0) + 1);

  // Anyone on the LAN can send junk or forgeries at line rate: each kind of drop is logged (at debug)
  // at most once per interval, with how many were dropped meanwhile; the counter has every one.
  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  const logDropped = (kind: Verdict | DatagramRejection, fields: Record<string, unknown>, message: string) => {
    const now = monotonic();
    const last = lastLogged.get(kind);
    if (last !== undefined && now - last.at < DROPPED_LOG_INTERVAL_MS) {
      last.suppressed += 1;
      return;
    }
    log.debug({ ...fields, suppressedSinceLast: last?.suppressed ?? 0 }, message);
    lastLogged.set(kind, { at: now, suppressed: 0 });
  };

  function onDatagram(packet: Buffer, acked: boolean, authentic: boolean, replayed: boolean): void {
    if (closed) return;
    receivedBytes += packet.length;
    // The liveness thread checked the HMAC; an inauthentic datagram is only told apart as malformed or forged.
    const decoded: ReturnType<typeof decodeAuthenticated> | { ok: false; reason: "bad-signature" } = authentic
      ? decodeAuthenticated(packet)
      : { ok: false, reason: looksLikeDatagram(packet) ? "bad-signature" : "malformed" };
    if (!decoded.ok) {
      count(decoded.reason);
      logDropped(decoded.reason, { reason: decoded.reason }, "dropped membership packet");
      return;
    }
    const { header, message } = decoded.datagram;
    // The thread keeps the replay marks, for every datagram (it sees the quiet ones this never does): a mark kept
    // here too would only ever lag behind it.
    const verdict = replayed ? "replay" : judgeDatagram(header, { self: nodeName, known: state.peers, previous: undefined, wallNow: Date.now(), maxSkewMs });
    count(verdict);
    if (verdict !== "accept") {
      if (verdict !== "self") logDropped(verdict, { node: header.sender, verdict }, "ignored membership datagram");
      return;
    }
    const now = monotonic();
    settleProbe(now);
    if (acked && message.type === "ping") ackedNatively = { from: header.sender, seq: message.seq, incarnation: state.incarnation, ready: state.phase === "ready" };
    const step = receive(state, header.sender, message, now);
    noteKnown(header.sender);
    run(step);
  }

  return {
    setPeers(next) {
      const valid = new Map<string, string>();
      for (const [name, address] of next) {
        if (isNodeName(name)) valid.set(name, address);
        else log.warn({ node: name }, "ignoring a node whose name the membership protocol cannot carry");
      }
      peers = valid;
      native.setPeers(valid, port);
      // Names are ASCII (isNodeName), so their length is their size on the wire.
      state.config.maxPiggybackBytes = piggybackBudget(Math.max(nodeName.length, ...[...valid.keys()].map((n) => n.length)));
      for (const name of knownSent.keys()) if (!valid.has(name)) knownSent.delete(name);
      run(setPeers(state, valid.keys(), monotonic()));
      publish(true);
    },
    live: () => live,
    async close() {
      if (closed) return;
      const step = leave(state, monotonic());
      run(step);
      closed = true;
      clearTimeout(timer);
      countThreadStats();
      await new Promise((resolve) => setTimeout(resolve, 20));
      native.close();
    },
  };
}
