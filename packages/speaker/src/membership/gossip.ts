// The membership protocol as a pure state machine: SWIM failure detection (direct probe, indirect probe
// through k members, suspicion before death), Lifeguard's refinements (local health stretches this node's
// own probe timing when it is the slow one; a suspicion times out sooner the more members independently
// confirm it; the suspect is told at once so it can refute) and piggybacked dissemination, each update
// sent λ·log10(N) times. No sockets, clocks or timers: every function takes `now` (a monotonic ms clock),
// mutates the state it is given and returns the messages to send. Randomness comes from `config.random`,
// so a seeded source makes every run repeatable.
//
// The members are the cluster's Node objects (the speaker learns them from the API), so nobody has to be
// told about a peer to probe it; a node whose speaker never ran is "unknown" and never counted.

export type MemberStatus = "alive" | "suspect" | "dead" | "left";

/** What one member says about another (or itself); carried piggyback on every message. */
export type Update =
  /** `ready: false` while the member is still joining: its peers do not count it yet. */
  | { kind: "alive"; node: string; incarnation: number; ready: boolean }
  /**
   * `witnesses`: members other than `from` that `from` asked to reach the node (its indirect probe) and that
   * answered they could not (a nack). Each counts as a confirmation of the suspicion wherever it is heard.
   * `ageMs` (witnessed suspicions only): the accuser's probe was refused (the suspect's port is closed), and the
   * suspicion had run this long where it was sent from. A hearer counts it from then, down to a floor (`heardAge`).
   */
  | { kind: "suspect"; node: string; incarnation: number; from: string; witnesses?: number; ageMs?: number }
  /** `from === node`: the member left on its own. */
  | { kind: "dead"; node: string; incarnation: number; from: string };

export type Message =
  | { type: "ping"; seq: number; target: string; updates: Update[] }
  /** Asks the receiver to ping `target` and pass the ack back (or a nack when none comes). */
  | { type: "ping-req"; seq: number; target: string; updates: Update[] }
  | { type: "ack"; seq: number; updates: Update[] }
  | { type: "nack"; seq: number; updates: Update[] }
  /** A joining member asks for the receiver's whole view ... */
  | { type: "sync"; updates: Update[] }
  /** ... which comes back in `state` messages: applied, not spread further (it is nobody's news). */
  | { type: "state"; updates: Update[] }
  | { type: "gossip"; updates: Update[] };

export interface Outgoing {
  to: string;
  message: Message;
}

/** What happened, for logs and metrics; the live set is read with `liveMembers`. */
export type Note =
  | { kind: "suspect" | "dead" | "left" | "alive"; node: string; incarnation: number; from?: string }
  | { kind: "refuted"; incarnation: number; from: string }
  | { kind: "ready"; neverHeard: string[] }
  | { kind: "converged" }
  | { kind: "stalled"; ms: number };

export interface GossipConfig {
  /** Probe period T (one member probed per period), stretched by local health. */
  probeIntervalMs: number;
  /** How long the direct ping may go unanswered before it is sent again and k members are asked to try, stretched by local health. */
  probeTimeoutMs: number;
  /** k: members asked to probe indirectly. */
  indirectProbes: number;
  /** Pending updates go to `gossipFanout` random members every `gossipIntervalMs`. */
  gossipIntervalMs: number;
  gossipFanout: number;
  /** λ: each update is sent λ·ceil(log10(N + 1)) times by every member that learns it. */
  retransmitMult: number;
  /** α: a suspicion lasts at least α·max(1, log10 N)·T, and never less than `suspicionMinMs` ... */
  suspicionMult: number;
  suspicionMinMs: number;
  /** ... and at most β·max(`suspicionMinMs`, log10 N·T) (β this), when nobody confirms it. */
  suspicionMaxMult: number;
  /** Independent confirmations after which a suspicion lasts only its minimum. */
  suspicionConfirmations: number;
  /** Lifeguard's S: local health ranges 0..S, probe timing is multiplied by (health + 1). */
  maxLocalHealth: number;
  /** A member that is dead, or never heard, is pinged every this often, so a healed partition rejoins. */
  reconnectIntervalMs: number;
  /**
   * ... and this often for `staleVerdictMs` after a member counted dead spoke or this member was told it is
   * dead (a partition healing): each member this one counts dead must hear so to refute.
   */
  healingReconnectIntervalMs: number;
  /** A joining member that has not heard of every peer asks another member for its view this often. */
  syncRetryMs: number;
  /**
   * Push-pull: a ready member sends its whole view to a random member and gets that member's back, about this
   * often times max(1, ceil(log2(N / 32))) (memberlist's scaling), and at once when it is told it is dead after
   * its process stopped (it rejoins with the whole view, not only what gossip still carries). 0: never.
   */
  pushPullIntervalMs: number;
  /** A starting member stays joining at least this long after it learns its peers. */
  joinGraceMs: number;
  /** ... and while some peer is unknown to it, up to this long. */
  silentPeerGraceMs: number;
  /** A peer that has been joining longer than this is not waited for before this member counts itself. */
  joiningLimitMs: number;
  /** A gap between two ticks longer than this is this process stalling: deadlines move by the gap. */
  stallMs: number;
  /** Verdicts of a member counted dead until less than this long ago are ignored (a healed partition's). */
  staleVerdictMs: number;
  /** Bytes of piggybacked updates per message, measured with `updateSize`. */
  maxPiggybackBytes: number;
  updateSize(update: Update): number;
  /** A uniform number in [0, 1). */
  random(): number;
  /**
   * The probe's retry and timeout are kept by someone else (the liveness thread), who pings the target once more
   * and calls `tick` at the timeout: the core does neither retry nor wake for them.
   */
  externalProbeTimers?: boolean;
}

/** The protocol's knobs; the rest of the configuration is how sizes are measured and where randomness comes from. */
export type GossipTiming = Omit<GossipConfig, "maxPiggybackBytes" | "updateSize" | "random" | "externalProbeTimers">;

export const DEFAULT_GOSSIP_TIMING: Readonly<GossipTiming> = {
  probeIntervalMs: 200,
  probeTimeoutMs: 80,
  indirectProbes: 3,
  gossipIntervalMs: 50,
  gossipFanout: 3,
  retransmitMult: 4,
  suspicionMult: 0.5,
  suspicionMinMs: 200,
  suspicionMaxMult: 4,
  suspicionConfirmations: 2,
  maxLocalHealth: 8,
  reconnectIntervalMs: 500,
  healingReconnectIntervalMs: 50,
  syncRetryMs: 1000,
  pushPullIntervalMs: 30_000,
  joinGraceMs: 500,
  silentPeerGraceMs: 5000,
  joiningLimitMs: 1500,
  stallMs: 250,
  staleVerdictMs: 5000,
};

export interface Member {
  incarnation: number;
  status: MemberStatus;
  ready: boolean;
  /** When this member was first seen joining at this incarnation (for `joiningLimitMs`). */
  joiningSince: number | undefined;
  suspicion: Suspicion | undefined;
}

interface Suspicion {
  startedAt: number;
  confirmers: Set<string>;
  /** The most witnesses (helpers that could not reach the suspect) any accuser reported. */
  witnesses: number;
  /** Counted from its accuser's start: that accuser's probe was refused, and its helpers nacked (`heardAge`). */
  aged: boolean;
  minMs: number;
  maxMs: number;
  expected: number;
  /**
   * This member asked the suspect itself (its probe, the buddy pings, or a check: `settle`) and gives it until then to
   * answer; undefined: it has not asked yet, it knows the suspicion only by hearsay.
   */
  askedUntil: number | undefined;
  /** Another member's verdict came after the minimum, or with the confirmations: the suspicion is due now (`settle`). */
  verdict: boolean;
}

interface Probe {
  seq: number;
  target: string;
  startedAt: number;
  /** Half the timeout: the ping is sent once more, directly. */
  retryAt: number;
  retried: boolean;
  timeoutAt: number;
  deadline: number;
  indirectSent: boolean;
  /** Its target's host said nothing listens on the port (probeRefused). */
  refused?: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  origin: string;
  originSeq: number;
  nackAt: number;
}

interface Pending {
  update: Update;
  transmits: number;
}

export type Phase = "joining" | "ready" | "leaving";

export interface GossipState {
  readonly config: GossipConfig;
  readonly self: string;
  incarnation: number;
  phase: Phase;
  /** Latched: once this member counts itself, a later joiner does not make it doubt again. */
  converged: boolean;
  peers: Set<string>;
  /** `peers` as an array, for sampling. */
  peerList: string[];
  members: Map<string, Member>;
  /** Members with a running suspicion (the only ones whose timers need looking at). */
  suspects: Set<string>;
  /** Peers counted dead or never heard of: the ones reconnect pings go to. */
  down: Set<string>;
  /** Peers up but not ready (joining), whose record may be one this member never saw replaced: see `advance`. */
  joining: Set<string>;
  peersKnownAt: number | undefined;
  localHealth: number;
  seq: number;
  probe: Probe | undefined;
  probeOrder: string[];
  probeIndex: number;
  nextProbeAt: number;
  nextGossipAt: number;
  nextReconnectAt: number;
  nextSyncAt: number;
  nextPushPullAt: number;
  /** When this process was last seen to have stalled, and when that last led to a push-pull. */
  lastStallAt: number;
  lastStallPushPullAt: number;
  relays: Map<number, Relay>;
  /** Until when reconnect pings go out every `healingReconnectIntervalMs` (a partition is healing). */
  healingUntil: number;
  /** When a member believed dead was last told so after it spoke. */
  nudged: Map<string, number>;
  /**
   * Members whose verdicts are stale for `staleVerdictMs` from the time here: counted alive again after dead (or
   * left), or heard saying that this member is dead. Either way they were on the other side of a partition.
   */
  staleSince: Map<string, number>;
  /**
   * Updates waiting to be sent, at most one per member: `fresh` never sent yet (in order of arrival), `queue`
   * sent at least once (least recently sent first). Fresh ones go out first: behind a queue of hundreds (a
   * partition healing) a refutation waited for the whole queue to be sent once, and lost the race with the
   * suspicion's timer.
   */
  fresh: Map<string, Pending>;
  queue: Map<string, Pending>;
  lastTickAt: number | undefined;
  /** `nextDeadline` when the last step ended: being woken much later than this is a stall. */
  expectedBy: number | undefined;
}

export interface Step {
  send: Outgoing[];
  notes: Note[];
}

/** `incarnation` must grow across restarts of this member: the shell uses its start time. */
export function createGossip(config: GossipConfig, self: string, incarnation: number, now: number): GossipState {
  return {
    config,
    self,
    incarnation,
    phase: "joining",
    converged: false,
    peers: new Set(),
    peerList: [],
    members: new Map(),
    suspects: new Set(),
    down: new Set(),
    joining: new Set(),
    peersKnownAt: undefined,
    localHealth: 0,
    seq: 0,
    probe: undefined,
    probeOrder: [],
    probeIndex: 0,
    nextProbeAt: now,
    nextGossipAt: now,
    nextReconnectAt: now,
    nextSyncAt: now,
    nextPushPullAt: Number.POSITIVE_INFINITY,
    lastStallAt: Number.NEGATIVE_INFINITY,
    lastStallPushPullAt: Number.NEGATIVE_INFINITY,
    relays: new Map(),
    healingUntil: Number.NEGATIVE_INFINITY,
    nudged: new Map(),
    staleSince: new Map(),
    fresh: new Map(),
    queue: new Map(),
    lastTickAt: undefined,
    expectedBy: undefined,
  };
}

const isUp = (m: Member | undefined): m is Member => m !== undefined && (m.status === "alive" || m.status === "suspect");

/** Whether `name` is counted right now: alive or suspect and ready; this member once its view has converged. */
export function isLive(state: GossipState, name: string): boolean {
  if (name === state.self) return state.converged && state.phase !== "leaving";
  const m = state.members.get(name);
  return isUp(m) && m.ready;
}

/** Every member `isLive` counts (`members` never holds this member itself). */
export function liveMembers(state: GossipState): Set<string> {
  const live = new Set<string>();
  if (isLive(state, state.self)) live.add(state.self);
  for (const name of state.members.keys()) if (isLive(state, name)) live.add(name);
  return live;
}

/** The whole cluster, this member excluded; members no longer listed are forgotten. */
export function setPeers(state: GossipState, names: Iterable<string>, now: number): Step {
  const step: Step = { send: [], notes: [] };
  state.peerList = [...new Set(names)].filter((n) => n !== state.self);
  state.peers = new Set(state.peerList);
  for (const name of state.members.keys()) {
    if (state.peers.has(name)) continue;
    state.members.delete(name);
    state.joining.delete(name);
    state.suspects.delete(name);
  }
  state.down = new Set(
    state.peerList.filter((name) => {
      const m = state.members.get(name);
      return m === undefined || m.status === "dead";
    }),
  );
  for (const pending of [state.fresh, state.queue]) for (const node of pending.keys()) if (node !== state.self && !state.peers.has(node)) pending.delete(node);
  for (const node of state.staleSince.keys()) if (!state.peers.has(node)) state.staleSince.delete(node);
  if (state.peersKnownAt === undefined) {
    state.peersKnownAt = now;
    enqueue(state, selfAlive(state));
    sendSync(state, now, step, Math.min(3, state.peers.size));
  }
  advance(state, now, step);
  state.expectedBy = nextDeadline(state);
  return step;
}

/** Timers: call at `nextDeadline(state)` at the latest (after reading the datagrams waiting). */
export function tick(state: GossipState, now: number): Step {
  const step: Step = { send: [], notes: [] };
  observeTime(state, now, step);
  if (state.phase === "leaving") return step;
  advance(state, now, step);
  state.expectedBy = nextDeadline(state);
  return step;
}

function observeTime(state: GossipState, now: number, step: Step): void {
  if (state.expectedBy !== undefined && now - state.expectedBy > state.config.stallMs) {
    // This process did not run when it should have (GC, CPU starvation, SIGSTOP): what it did not see in
    // time is no evidence about anybody else, so every deadline moves by the delay. Whatever runs first
    // after the stall (a timer, or a datagram that waited) notices it.
    const gap = now - state.expectedBy;
    shiftDeadlines(state, gap);
    state.localHealth = Math.min(state.config.maxLocalHealth, state.localHealth + 1);
    state.lastStallAt = now;
    step.notes.push({ kind: "stalled", ms: Math.round(gap) });
  }
  state.lastTickAt = now;
  state.expectedBy = undefined;
}

/** The next time `tick` has something to do. */
export function nextDeadline(state: GossipState): number {
  // Gossip rounds only while something waits to be sent: an idle member wakes for its probes only. Reconnect
  // pings ride on those wake-ups (up to a probe period late), unless a partition is healing (every 50 ms then).
  let next = state.nextProbeAt;
  if (state.nextReconnectAt <= state.healingUntil) next = Math.min(next, state.nextReconnectAt);
  if (hasPending(state)) next = Math.min(next, state.nextGossipAt);
  const probe = state.probe;
  if (probe !== undefined && (probe.indirectSent || state.config.externalProbeTimers !== true)) {
    next = Math.min(next, probe.indirectSent ? probe.deadline : probe.retried ? probe.timeoutAt : probe.retryAt);
  }
  for (const relay of state.relays.values()) next = Math.min(next, relay.nackAt);
  for (const name of state.suspects) {
    const suspicion = state.members.get(name)?.suspicion;
    if (suspicion !== undefined) next = Math.min(next, suspicionEnd(suspicion));
  }
  if (state.phase === "joining" && state.peersKnownAt !== undefined) {
    const { joinGraceMs, silentPeerGraceMs } = state.config;
    // Only the waits not yet over (once over, the next tick acts on them).
    const last = state.lastTickAt ?? Number.NEGATIVE_INFINITY;
    for (const at of [state.peersKnownAt + joinGraceMs, state.peersKnownAt + silentPeerGraceMs]) if (at > last) next = Math.min(next, at);
    if (state.members.size < state.peers.size) next = Math.min(next, state.nextSyncAt);
  }
  if (state.phase === "ready" && !state.converged) next = Math.min(next, state.nextSyncAt);
  if (state.phase === "ready") next = Math.min(next, state.nextPushPullAt);
  return next;
}

/** A message from `from` (already authenticated and checked against replay by the wire layer). */
export function receive(state: GossipState, from: string, message: Message, now: number): Step {
  const step: Step = { send: [], notes: [] };
  if (state.phase === "leaving" || !state.peers.has(from)) return step;
  observeTime(state, now, step);
  const sender = state.members.get(from);
  if (sender?.status === "dead" && message.type !== "ping" && now >= (state.nudged.get(from) ?? Number.NEGATIVE_INFINITY) + state.config.probeIntervalMs) {
    // A member believed dead is talking (a partition healed): tell it so, and it refutes. (A ping is
    // answered with an ack that says the same.)
    state.nudged.set(from, now);
    reply(state, from, { type: "ping", seq: nextSeq(state), target: from }, step);
  }
  if (sender?.status === "dead") startHealing(state, now);
  const spread = message.type !== "state";
  // A sender that says this member is dead, or suspects it, is wrong about it (or behind: this member may have
  // refuted already — the liveness thread often has, before the event loop reads the datagram): the suspect/dead
  // verdicts it passes on in the same datagram come from that view, and are not taken. One that says this member
  // is dead was on the other side of a partition (or this process was stopped), so its own verdicts are stale
  // for a while, as a revived member's are, wherever they are relayed from. In the simulation at 1,000, nearly all
  // deaths of the minority's members at the minority after a heal came from such datagrams: pings of majority
  // members that the minority had never counted dead (none of its members probed them during the partition),
  // carrying their partition-time verdicts, taken before the named members could refute.
  const aboutSelf = message.updates.find((u) => u.node === state.self && isVerdict(u));
  if (aboutSelf?.kind === "dead" && from !== state.self) state.staleSince.set(from, now);
  for (const update of message.updates) {
    if (aboutSelf !== undefined && update.node !== state.self && isVerdict(update)) continue;
    apply(state, update, now, step, spread);
  }
  switch (message.type) {
    case "ping":
      // The ack carries this member's own record, so a pinger that has none (a joiner) learns it.
      if (message.target === state.self) reply(state, from, { type: "ack", seq: message.seq }, step, [selfAlive(state)]);
      break;
    case "ping-req": {
      if (!state.peers.has(message.target) || message.target === state.self) break;
      const seq = nextSeq(state);
      state.relays.set(seq, { origin: from, originSeq: message.seq, nackAt: now + scaled(state, state.config.probeTimeoutMs) });
      reply(state, message.target, { type: "ping", seq, target: message.target }, step);
      break;
    }
    case "ack": {
      const relay = state.relays.get(message.seq);
      if (relay !== undefined) {
        state.relays.delete(message.seq);
        reply(state, relay.origin, { type: "ack", seq: relay.originSeq }, step);
      } else if (state.probe !== undefined && state.probe.seq === message.seq) {
        state.probe = undefined;
        state.localHealth = Math.max(0, state.localHealth - 1);
      }
      break;
    }
    case "nack":
      if (state.probe !== undefined && state.probe.seq === message.seq) state.probe.nacks += 1;
      break;
    case "sync":
      for (const chunk of chunks(state, viewAsUpdates(state))) step.send.push({ to: from, message: { type: "state", updates: chunk } });
      break;
    case "state":
    case "gossip":
      break;
  }
  advance(state, now, step);
  state.expectedBy = nextDeadline(state);
  return step;
}

/**
 * The probe's target refused it: its host answered that nothing listens on the membership port (ICMP port
 * unreachable), so the speaker there is not running. The helpers are asked at the next run of the rules instead of
 * at the timeout, and the member is suspect as soon as they all nack, not at the end of the period. An ICMP error
 * can be forged by anyone on the path: it only brings the indirect probe forward, and a member that acks this ping
 * or the helpers' is not suspected.
 */
export function probeRefused(state: GossipState, now: number): void {
  const probe = state.probe;
  if (probe === undefined || probe.indirectSent) return;
  probe.retried = true;
  probe.refused = true;
  probe.retryAt = Math.min(probe.retryAt, now);
  probe.timeoutAt = Math.min(probe.timeoutAt, now);
}

/** Says this member is leaving, to a few members twice (they spread it); afterwards it ignores everything. */
export function leave(state: GossipState, now: number): Step {
  const step: Step = { send: [], notes: [] };
  state.phase = "leaving";
  const left: Update = { kind: "dead", node: state.self, incarnation: state.incarnation, from: state.self };
  const targets = sampleUp(state, state.config.gossipFanout * 2, undefined);
  for (let round = 0; round < 2; round++) for (const to of targets) step.send.push({ to, message: { type: "gossip", updates: [left] } });
  state.lastTickAt = now;
  return step;
}

// --- the rules --------------------------------------------------------------------------------------

function advance(state: GossipState, now: number, step: Step): void {
  const { config } = state;
  if (state.peersKnownAt === undefined) return;
  progressJoin(state, now, step);

  for (const name of [...state.suspects]) {
    const m = state.members.get(name);
    // The same sum nextDeadline computes: with a difference instead, rounding could leave it never due.
    if (m?.suspicion !== undefined && now >= suspicionEnd(m.suspicion)) settle(state, name, m, now, step);
  }

  for (const [seq, relay] of state.relays) {
    if (now < relay.nackAt) continue;
    state.relays.delete(seq);
    reply(state, relay.origin, { type: "nack", seq: relay.originSeq }, step);
  }

  const probe = state.probe;
  if (probe !== undefined && !probe.retried && !probe.indirectSent && now >= probe.retryAt && config.externalProbeTimers !== true) {
    probe.retried = true;
    // Most unanswered pings were merely lost (5 % loss loses a ping or its ack about one probe in ten): asking
    // again directly costs two datagrams, the indirect probe a dozen (k ping-reqs, their pings, acks and the acks
    // passed back), and at a thousand members those were a third of all the traffic. A member truly gone still
    // gets its indirect probe at the timeout, so its witnesses come as soon as before.
    reply(state, probe.target, { type: "ping", seq: probe.seq, target: probe.target }, step, [selfAlive(state)]);
  }
  if (probe !== undefined && !probe.indirectSent && now >= probe.timeoutAt) {
    probe.indirectSent = true;
    const helpers = sampleUp(state, config.indirectProbes, probe.target);
    probe.expectedNacks = helpers.length;
    for (const helper of helpers) reply(state, helper, { type: "ping-req", seq: probe.seq, target: probe.target }, step);
    // And once more directly: with a lossy network most unanswered pings were merely lost.
    reply(state, probe.target, { type: "ping", seq: probe.seq, target: probe.target }, step, [selfAlive(state)]);
  }
  // A refused probe every helper nacked: the target's port was closed and nobody else reaches it either, so waiting
  // out the period only waits for an ack later than the helpers' own timeouts, and a member whose process is gone is
  // suspected some 100 ms sooner. (Not for a probe merely unanswered: under load a live member's acks come that late.)
  const refusedAndNacked = probe?.refused === true && probe.indirectSent && probe.expectedNacks > 0 && probe.nacks >= probe.expectedNacks;
  if (probe !== undefined && (now >= probe.deadline || refusedAndNacked)) {
    state.probe = undefined;
    // Lifeguard: a helper that sent neither ack nor nack suggests this member is the one not hearing.
    const missed = probe.expectedNacks > 0 ? probe.expectedNacks - probe.nacks : 1;
    state.localHealth = Math.min(config.maxLocalHealth, state.localHealth + Math.max(0, missed));
    const m = state.members.get(probe.target);
    // Suspecting a member already suspected at this incarnation confirms the suspicion. The helpers that
    // answered they could not reach it either are witnesses: each member that hears the suspicion counts them
    // as confirmations, so a member that is really gone is declared dead after the suspicion's minimum, while
    // one that only this member cannot reach (its helpers did not answer: a partition) gets the maximum.
    if (isUp(m)) {
      const suspect: Update = { kind: "suspect", node: probe.target, incarnation: m.incarnation, from: state.self };
      // At least two: one helper's nack is one lost datagram away (5 % loss gives a live member a lone nack
      // in about a quarter of failed probes, and at a thousand members some observer then missed the
      // refutation within the minimum); two independent ones are ten times rarer, and a dead member's
      // helpers give two or three in 97 % of probes.
      if (probe.nacks >= MIN_WITNESSES) {
        suspect.witnesses = probe.nacks;
        // A closed port's suspicion: counted from now wherever it is heard (`heardAge`).
        if (probe.refused === true) suspect.ageMs = 0;
      }
      apply(state, suspect, now, step);
    }
  }
  if (state.probe === undefined && now >= state.nextProbeAt) {
    state.nextProbeAt = now + scaled(state, config.probeIntervalMs);
    const target = nextProbeTarget(state);
    if (target !== undefined) {
      const seq = nextSeq(state);
      state.probe = {
        seq,
        target,
        startedAt: now,
        retryAt: now + scaled(state, config.probeTimeoutMs) / 2,
        retried: false,
        timeoutAt: now + scaled(state, config.probeTimeoutMs),
        deadline: now + scaled(state, config.probeIntervalMs),
        indirectSent: false,
        expectedNacks: 0,
        nacks: 0,
      };
      // Its own record rides along, so a member that missed an update about this one is put right.
      reply(state, target, { type: "ping", seq, target }, step, [selfAlive(state)]);
    }
  }

  if (now >= state.nextReconnectAt) {
    state.nextReconnectAt = now + (now < state.healingUntil ? config.healingReconnectIntervalMs : config.reconnectIntervalMs);
    const target = sampleDown(state);
    // An ack is not awaited: the ping carries what this member believes about the target (it refutes
    // that if it is alive) and this member's own record (so the target learns it is alive too).
    if (target !== undefined) reply(state, target, { type: "ping", seq: nextSeq(state), target }, step);
    // A peer still joining long after it started was most likely ready long ago, and this member missed the one
    // update that said so (dissemination reaches each member with high probability, not certainty: at start-up a
    // thousand members make two thousand updates). Probing and push-pull would put it right only after a minute
    // or two (a round robin over a thousand members); its ack carries its record now.
    const joiner = sampleLongJoining(state, now);
    if (joiner !== undefined) reply(state, joiner, { type: "ping", seq: nextSeq(state), target: joiner }, step, [selfAlive(state)]);
  }

  if (state.phase === "ready" && now >= state.nextPushPullAt) {
    state.nextPushPullAt = now + pushPullInterval(state) * (0.5 + config.random());
    for (const to of sampleUp(state, 1, undefined)) {
      for (const chunk of chunks(state, viewAsUpdates(state))) step.send.push({ to, message: { type: "state", updates: chunk } });
      step.send.push({ to, message: { type: "sync", updates: [selfAlive(state)] } });
    }
  }

  if (now >= state.nextGossipAt) {
    state.nextGossipAt = now + config.gossipIntervalMs;
    if (hasPending(state)) {
      for (const to of sampleUp(state, config.gossipFanout, undefined)) {
        const updates = piggyback(state, []);
        if (updates.length > 0) step.send.push({ to, message: { type: "gossip", updates } });
      }
    }
  }
}

function progressJoin(state: GossipState, now: number, step: Step): void {
  const { config } = state;
  const knownAt = state.peersKnownAt as number;
  if (state.phase === "joining") {
    // Members are only ever peers, so the counts tell whether every peer has been heard of.
    const allHeard = state.members.size === state.peers.size;
    const graceOver = now >= knownAt + config.joinGraceMs;
    if (graceOver && (allHeard || now >= knownAt + config.silentPeerGraceMs)) {
      state.phase = "ready";
      // A new incarnation, so that "ready" overrides every "joining" record of this member.
      state.incarnation += 1;
      enqueue(state, selfAlive(state));
      if (config.pushPullIntervalMs > 0) state.nextPushPullAt = now + pushPullInterval(state) * config.random();
      step.notes.push({ kind: "ready", neverHeard: state.peerList.filter((n) => !state.members.has(n)) });
    } else if (!allHeard && now >= state.nextSyncAt) {
      // A lost answer (or a first choice that was down): ask another member.
      sendSync(state, now, step, 1);
    }
  }
  if (state.phase === "ready" && !state.converged) {
    // Counting itself while a peer it hears is still joining would make this member believe it is
    // alone (or nearly) and announce what that peer will win: it waits, up to `joiningLimitMs`.
    // (`joining` holds exactly the members up and not ready: no walk over the whole view at each step.)
    const waitingFor: string[] = [];
    for (const name of state.joining) {
      if (now - (state.members.get(name)?.joiningSince ?? now) <= config.joiningLimitMs) {
        waitingFor.push(name);
        if (waitingFor.length >= 3) break;
      }
    }
    if (waitingFor.length > 0 && now >= state.nextSyncAt) {
      // A peer may be ready by now and this member missed the news: ask it (its ack carries its record).
      state.nextSyncAt = now + config.probeIntervalMs;
      for (const to of waitingFor) reply(state, to, { type: "ping", seq: nextSeq(state), target: to }, step, [selfAlive(state)]);
    }
    if (waitingFor.length === 0) {
      state.converged = true;
      step.notes.push({ kind: "converged" });
    }
  }
}

const STALL_PUSH_PULL_MS = 10_000;

/** The push-pull period at this cluster size: memberlist's scaling, so the whole views exchanged stay a small share of the traffic. */
function pushPullInterval(state: GossipState): number {
  return state.config.pushPullIntervalMs * Math.max(1, Math.ceil(Math.log2((state.peers.size + 1) / 32)));
}

function sendSync(state: GossipState, now: number, step: Step, count: number): void {
  state.nextSyncAt = now + state.config.syncRetryMs;
  // Prefer members known to be up; at first none is known, so any peer.
  const up = sampleUp(state, count, undefined);
  for (const to of up.length > 0 ? up : shuffle(state, state.peerList).slice(0, count)) {
    step.send.push({ to, message: { type: "sync", updates: [selfAlive(state)] } });
  }
}

/** Applies one update under SWIM's precedence: higher incarnation wins; at equal incarnation dead > suspect > alive. */
function apply(state: GossipState, update: Update, now: number, step: Step, spread = true): void {
  const enqueue = spread ? enqueueUpdate : () => {};
  if (update.node === state.self) {
    if (update.kind !== "alive" && update.incarnation >= state.incarnation && state.phase !== "leaving") {
      // Someone suspects (or declared dead) this member: refute with a higher incarnation.
      state.incarnation = update.incarnation + 1;
      state.localHealth = Math.min(state.config.maxLocalHealth, state.localHealth + 1);
      enqueueUpdate(state, selfAlive(state));
      // Gossiped at once, not at the next round: the suspicion is already spreading, and every hop the refutation
      // waits for a round (25 ms on average) is time off the suspicion's timer at the members it has not reached.
      state.nextGossipAt = Math.min(state.nextGossipAt, now);
      if (update.kind === "dead") startHealing(state, now);
      // Declared dead after this process stopped (SIGSTOP, a frozen cgroup): what happened meanwhile may be past
      // gossip's retransmissions, so it rejoins with another member's whole view. Not for a stall alone (the
      // liveness thread acked meanwhile: nobody counted it dead) nor a partition (every member would at once),
      // and at most once per STALL_PUSH_PULL_MS.
      if (
        update.kind === "dead" &&
        state.config.pushPullIntervalMs > 0 &&
        now - state.lastStallAt < state.config.staleVerdictMs &&
        now - state.lastStallPushPullAt >= STALL_PUSH_PULL_MS
      ) {
        state.nextPushPullAt = now;
        state.lastStallPushPullAt = now;
      }
      step.notes.push({ kind: "refuted", incarnation: state.incarnation, from: update.from });
    }
    return;
  }
  if (!state.peers.has(update.node)) return;
  const m = state.members.get(update.node);
  if ((update.kind === "suspect" || update.kind === "dead") && update.from !== state.self && update.from !== update.node && staleAccuser(state, update.from, now)) {
    // The other side of a healed partition: it counted this side dead, and its verdicts keep arriving (and being
    // relayed) after it is back. Taken as suspicions they would outrun the refutations in a large cluster (a
    // thousand at once) and kill live members; this member's own probes still find a member truly dead.
    return;
  }
  switch (update.kind) {
    case "alive": {
      if (m !== undefined && update.incarnation <= m.incarnation) return;
      if (m !== undefined && (m.status === "dead" || m.status === "left")) state.staleSince.set(update.node, now);
      // A refutation is passed on at once, at every hop: at a thousand members it reached half of them 200 ms
      // after the suspect refuted, when it waited for each member's round, and an observer whose 300 ms suspicion
      // ran out first counted a live member dead (seed 2 of the virtual simulation). It costs no datagram more
      // than the round it brings forward, and arises only on such news. A member back from the dead (a healed
      // partition, a resumed process) races no timer and waits for the round: passed on at once too, the revivals
      // of a healing partition made members gossip at nearly every datagram (a third of the healing's datagrams
      // on the virtual clock).
      if (m !== undefined && m.status === "suspect" && spread) state.nextGossipAt = Math.min(state.nextGossipAt, now);
      const joiningSince = update.ready ? undefined : m !== undefined && m.incarnation === update.incarnation ? m.joiningSince : now;
      state.members.set(update.node, { incarnation: update.incarnation, status: "alive", ready: update.ready, joiningSince, suspicion: undefined });
      if (update.ready) state.joining.delete(update.node);
      else state.joining.add(update.node);
      state.down.delete(update.node);
      state.suspects.delete(update.node);
      if (m === undefined || m.status !== "alive" || m.ready !== update.ready) step.notes.push({ kind: "alive", node: update.node, incarnation: update.incarnation });
      enqueue(state, update);
      return;
    }
    case "suspect": {
      if (m === undefined || m.status === "dead" || m.status === "left" || update.incarnation < m.incarnation) return;
      const witnesses = update.witnesses ?? 0;
      if (m.status === "suspect" && update.incarnation === m.incarnation) {
        const suspicion = m.suspicion as Suspicion;
        const age = heardAge(update, suspicion.minMs);
        if (age !== undefined) {
          suspicion.aged = true;
          suspicion.startedAt = Math.min(suspicion.startedAt, now - age);
        }
        // This member's own probe failed too: it asked the suspect itself.
        if (update.from === state.self) suspicion.askedUntil = Math.min(suspicion.askedUntil ?? now, now);
        if (!suspicion.confirmers.has(update.from) || witnesses > suspicion.witnesses) {
          const counted = Math.min(confirmations(suspicion), suspicion.expected);
          suspicion.confirmers.add(update.from);
          suspicion.witnesses = Math.max(suspicion.witnesses, witnesses);
          // Confirmations are spread too, so every member's timer shortens — but only while they do: once a
          // suspicion has the confirmations it waits for, more shorten no timer (memberlist's rule too). At a
          // thousand members every prober of a dead member confirmed it, each confirmation sent λ·log N times by
          // every member: a death was tens of thousands of datagrams within a second.
          if (Math.min(confirmations(suspicion), suspicion.expected) > counted) enqueue(state, update);
        }
        return;
      }
      // N is the cluster as the Node objects list it: an upper bound of the members alive.
      const others = state.peers.size;
      const periods = Math.max(1, Math.log10(others + 1)) * state.config.probeIntervalMs;
      const minMs = Math.max(state.config.suspicionMinMs, state.config.suspicionMult * periods);
      const age = heardAge(update, minMs);
      m.incarnation = update.incarnation;
      m.status = "suspect";
      state.suspects.add(update.node);
      m.suspicion = {
        startedAt: now - (age ?? 0),
        confirmers: new Set([update.from]),
        witnesses,
        aged: age !== undefined,
        minMs,
        // The longest wait does not shrink with α: an unconfirmed suspicion (a member behind a partition, or one
        // whose refutation is slow to spread) gets as long as it did before the minimum was halved.
        maxMs: Math.max(minMs, state.config.suspicionMaxMult * Math.max(state.config.suspicionMinMs, periods)),
        // Members other than the suspect and this one that could confirm.
        expected: Math.max(0, Math.min(state.config.suspicionConfirmations, others - 2)),
        // Its own: the buddy pings below ask the suspect, which answers in the time of a check.
        askedUntil: update.from === state.self ? now + checkMs(state) : undefined,
        verdict: false,
      };
      step.notes.push({ kind: "suspect", node: update.node, incarnation: update.incarnation, from: update.from });
      enqueue(state, update);
      // A closed port's suspicion is passed on at once, at every hop, not at each member's next round: in a traced
      // run at 1,000 it reached half of the members only some 550 ms after the accuser started it, queued behind
      // the kill's burst, and each hop's wait for the round added to that. It costs no datagram more (the round
      // comes sooner), and there is one such suspicion per killed member.
      if (age !== undefined && spread) state.nextGossipAt = Math.min(state.nextGossipAt, now);
      // The buddy system: tell the suspect now, so that it refutes before anyone's timer runs out — twice, since
      // a lost ping left it to hear of the suspicion from gossip, ~100 ms later at a thousand members, and a
      // witnessed suspicion lasts only 300 ms there.
      if (update.from === state.self) askSuspect(state, update.node, step);
      return;
    }
    case "dead": {
      if (m !== undefined && update.from !== update.node && update.from !== state.self && update.incarnation === m.incarnation) {
        // Another member's verdict, about a member this one has not suspected for long: after a partition
        // heals, the other side's stale "dead" arrives before the refutation can. Suspect it instead, as this
        // member's own suspicion (so the suspect is told at once and refutes), or count the verdict as a
        // confirmation of the running suspicion until that has lasted its minimum; a member truly dead is
        // declared dead here too when this member's own timer runs out.
        if (m.status === "alive") {
          apply(state, { kind: "suspect", node: update.node, incarnation: update.incarnation, from: state.self }, now, step, spread);
          return;
        }
        if (m.status === "suspect" && m.suspicion !== undefined) {
          const suspicion = m.suspicion;
          suspicion.confirmers.add(update.from);
          // A verdict makes the suspicion due once it has lasted its minimum — or at once, when as many members as
          // it waits for have independently failed to reach the suspect: the first timer to run out spreads the
          // death instead of each member's own. Not at once while a partition heals: the other side's verdicts and
          // witnessed suspicions from the partition then arrive before the refutations of the members they name
          // (whose accusers this member cannot all tell apart: some it never counted dead), and taken at once they
          // made a minority member drop 14 of its own side 185 ms after a heal in the bench at 1,000; the minimum
          // gives the refutations their time. Due or not, the suspect is still asked first (`settle`).
          const confirmed = suspicion.expected > 0 && confirmations(suspicion) >= suspicion.expected && now >= state.healingUntil;
          if (now >= suspicion.startedAt + suspicion.minMs || confirmed) {
            suspicion.verdict = true;
            settle(state, update.node, m, now, step);
          }
          return;
        }
      }
      if (m !== undefined && (update.incarnation < m.incarnation || ((m.status === "dead" || m.status === "left") && update.incarnation === m.incarnation))) return;
      const status: MemberStatus = update.from === update.node ? "left" : "dead";
      state.members.set(update.node, { incarnation: update.incarnation, status, ready: m?.ready ?? false, joiningSince: undefined, suspicion: undefined });
      state.joining.delete(update.node);
      if (status === "dead") state.down.add(update.node);
      else state.down.delete(update.node);
      state.suspects.delete(update.node);
      if (state.probe?.target === update.node) state.probe = undefined;
      step.notes.push({ kind: status, node: update.node, incarnation: update.incarnation, from: update.from });
      enqueue(state, update);
      return;
    }
  }
}

/**
 * This member's record was given a higher incarnation elsewhere (the liveness thread refuted a suspicion before
 * the event loop ran, or numbered a changed record anew): the core takes that number and spreads its record at
 * once, as after a refutation of its own. Usually the core has it already, having read the same accusation.
 */
export function adoptIncarnation(state: GossipState, incarnation: number, now: number): Step {
  if (!(incarnation > state.incarnation) || state.phase === "leaving") return { send: [], notes: [] };
  state.incarnation = incarnation;
  enqueueUpdate(state, selfAlive(state));
  state.nextGossipAt = Math.min(state.nextGossipAt, now);
  return tick(state, now);
}

/**
 * A partition is healing: the members this one counts dead learn so only from it (their accusers' verdicts are
 * stale on the other side and dropped there), so it pings them faster for a while, and each refutes.
 */
function startHealing(state: GossipState, now: number): void {
  if (now < state.healingUntil) return;
  state.healingUntil = now + state.config.staleVerdictMs;
  state.nextReconnectAt = Math.min(state.nextReconnectAt, now + state.config.healingReconnectIntervalMs);
}

/**
 * Whether a suspect or dead verdict from `accuser` is stale: this member counts the accuser dead (it is on the
 * other side of a partition), or counted it so until less than `staleVerdictMs` ago, or heard it say that this
 * member is dead less than that ago (`staleSince`), or suspects it. A member
 * whose process stalled through a partition heals still suspecting much of the other side (its timers moved by
 * the stall): that side's verdicts from the partition, two of them confirmations enough, made it count members
 * of its own side dead at once, 0.1–0.2 s after the heal in the simulation at 1,000.
 */
function staleAccuser(state: GossipState, accuser: string, now: number): boolean {
  const a = state.members.get(accuser);
  if (a !== undefined && (a.status === "dead" || a.status === "left" || a.status === "suspect")) return true;
  const since = state.staleSince.get(accuser);
  return since !== undefined && now - since < state.config.staleVerdictMs;
}

/**
 * How long ago an aged suspicion began, as far as a hearer counts it (undefined: the suspicion is not aged, and is
 * counted from the hearing). Only a suspicion whose accuser's probe was refused by the suspect's host (its port is
 * closed: the speaker is gone) and whose helpers nacked carries an age; a merely unanswered one could be a live
 * member whose refutation is still on its way. Counted from each member's own hearing, a killed member was
 * dropped by half of a thousand 370–470 ms after the first did (the suspicion's news queued behind the kill's
 * burst on two cores), while the same news took 46 ms on the virtual clock; counted from the accuser's start, they
 * drop it nearer together. A hearer still waits at least a third of the minimum (100 ms at a thousand), as a
 * refusal can be forged and a refutation, which starts from the suspect as soon as the accuser tells it, may
 * still be on its way.
 */
function heardAge(update: Update, minMs: number): number | undefined {
  if (update.kind !== "suspect" || (update.witnesses ?? 0) === 0 || update.ageMs === undefined) return undefined;
  return Math.max(0, Math.min(update.ageMs, minMs - minMs / HEARING_FLOOR_DIVISOR));
}

/** When a suspicion is due: at the end of its timeout, or now once a verdict made it so. */
const dueAt = (s: Suspicion) => (s.verdict ? Number.NEGATIVE_INFINITY : s.startedAt + suspicionTimeout(s));

/** When `settle` next has something to do about a running suspicion. */
function suspicionEnd(s: Suspicion): number {
  const due = dueAt(s);
  return s.aged || s.askedUntil === undefined ? due : Math.max(due, s.askedUntil);
}

/** How long a member gives a suspect it asked to answer: a probe timeout (stretched by local health). */
const checkMs = (state: GossipState) => scaled(state, state.config.probeTimeoutMs);

/**
 * Called for a suspicion that is due (`suspicionEnd` passed, or a verdict made it so). It ends in death — once this
 * member has asked the suspect itself and the suspect had its time to answer. Hearsay is checked before it is
 * believed: a member that knows the suspicion only from others pings the suspect twice when it is due, and waits a
 * probe timeout. The ping carries the suspicion, so a live suspect refutes in its ack (its liveness thread answers
 * at once, even while its event loop stalls). A member that
 * suspected it itself asked already: its probe, or the buddy pings (the same wait from those). A suspicion whose
 * suspect's port was found closed (aged: the speaker there is gone) is not checked: nothing there can answer.
 *
 * Why: a suspicion and its refutation race, and under load the refutation can lose. In the simulation at 1,000, 13
 * minority members dropped a live member 0.5–1.1 s after it had refuted: they heard the suspicion from its accuser
 * directly, and not the refutation within the 300 ms minimum (it was relayed through processes that stalled for
 * seconds). And after a heal, a member that had not heard from the other side yet took the other side's stale
 * verdicts about its own side, confirmed twice, at once. The cost: a member that is unreachable without a closed port
 * (a node down, the other side of a partition) gets two pings from each member that heard of it, and is dropped up
 * to 80 ms later. Two pings and a whole probe timeout, not one and half of it: with 5 % loss each way one
 * exchange in ten fails, and a liveness thread serving a whole process of members (the simulation's 224) answered
 * after a heal's flood later than 40 ms (its member, dropped, rejoined 132 ms after). Either drops a live member.
 */
function settle(state: GossipState, name: string, m: Member, now: number, step: Step): void {
  const s = m.suspicion as Suspicion;
  if (!s.aged) {
    if (s.askedUntil === undefined) {
      s.askedUntil = now + checkMs(state);
      askSuspect(state, name, step);
      return;
    }
    if (now < s.askedUntil) return;
  }
  apply(state, { kind: "dead", node: name, incarnation: m.incarnation, from: state.self }, now, step);
}

/**
 * Pings a suspect twice (the buddy pings, or a check): each ping carries the suspicion, which a live suspect refutes
 * in its ack; with 5 % loss each way one exchange in ten fails, both about one in a hundred.
 */
function askSuspect(state: GossipState, name: string, step: Step): void {
  for (let i = 0; i < 2; i++) reply(state, name, { type: "ping", seq: nextSeq(state), target: name }, step);
}

/** A hearer of an aged suspicion waits at least its minimum divided by this. */
const HEARING_FLOOR_DIVISOR = 3;

/** A suspicion as this member sends it: an aged one with how long it has run here. */
function aged(state: GossipState, update: Update): Update {
  if (update.kind !== "suspect" || (update.witnesses ?? 0) === 0) return update;
  const m = state.members.get(update.node);
  if (m?.suspicion?.aged !== true || m.incarnation !== update.incarnation || state.lastTickAt === undefined) return update;
  return { ...update, ageMs: Math.max(0, Math.round(state.lastTickAt - m.suspicion.startedAt)) };
}

/** A suspicion or death verdict (a member's own leave is not one). */
const isVerdict = (update: Update) => update.kind === "suspect" || (update.kind === "dead" && update.from !== update.node);

/** Independent confirmations of a suspicion: accusers besides the first, and the witnesses an accuser reported. */
const confirmations = (s: { confirmers: Set<string>; witnesses?: number }) => s.confirmers.size - 1 + (s.witnesses ?? 0);

/** Remaining time of a suspicion (Lifeguard): from max toward min as log(confirmations + 1) / log(expected + 1). */
export function suspicionTimeout(s: { confirmers: Set<string>; witnesses?: number; minMs: number; maxMs: number; expected: number }): number {
  if (s.expected <= 0) return s.minMs;
  const confirmed = Math.min(confirmations(s), s.expected);
  const fraction = Math.log(confirmed + 1) / Math.log(s.expected + 1);
  return Math.max(s.minMs, s.maxMs - (s.maxMs - s.minMs) * fraction);
}

/** The maximum number of times an update is sent by each member: λ·ceil(log10(N + 1)). */
export function retransmitLimit(config: Pick<GossipConfig, "retransmitMult">, members: number): number {
  return config.retransmitMult * Math.max(1, Math.ceil(Math.log10(members + 1)));
}

const enqueue = enqueueUpdate;

function enqueueUpdate(state: GossipState, update: Update): void {
  // A newer update about a member replaces the one still waiting to go out (a confirmation of a
  // suspicion replaces the previous one: receivers collect the confirmers over time).
  state.queue.delete(update.node);
  state.fresh.delete(update.node);
  state.fresh.set(update.node, { update, transmits: 0 });
}

const hasPending = (state: GossipState) => state.fresh.size > 0 || state.queue.size > 0;

/** The updates waiting to be sent, in the order they will go. */
export function pendingUpdates(state: GossipState): Update[] {
  return [...pendingInOrder(state)].map(([, p]) => p.update);
}

/** This member's own news first (a refutation must beat the suspicion's timer), then never sent, then least recently sent. */
function* pendingInOrder(state: GossipState): Generator<[string, Pending]> {
  const own = state.fresh.get(state.self) ?? state.queue.get(state.self);
  if (own !== undefined) yield [state.self, own];
  for (const entry of state.fresh) if (entry[0] !== state.self) yield entry;
  for (const entry of state.queue) if (entry[0] !== state.self) yield entry;
}

/** Updates to piggyback on a message: `first` (what the receiver most needs), then the least sent first. */
function piggyback(state: GossipState, first: Update[]): Update[] {
  const { config } = state;
  const out = [...first];
  let budget = config.maxPiggybackBytes - first.reduce((sum, u) => sum + config.updateSize(u), 0);
  const limit = retransmitLimit(config, state.peers.size + 1);
  // Fresh updates first, then the queue in order of last sending (a sent update goes to the back), so its
  // front holds the updates sent least recently; an update too big for what is left of the budget waits its turn.
  const taken: Array<[string, Pending]> = [];
  // A few updates too big for what is left end the scan: otherwise a nearly full datagram walks the whole
  // queue (a thousand updates when a thousand members start together), for every datagram sent.
  let misfits = 0;
  for (const [node, pending] of pendingInOrder(state)) {
    if (budget < MIN_UPDATE_BYTES || misfits >= MAX_MISFITS) break;
    const update = aged(state, pending.update);
    const size = config.updateSize(update);
    if (size > budget) {
      misfits += 1;
      continue;
    }
    if (!first.some((u) => sameUpdate(u, update))) {
      out.push(update);
      budget -= size;
    }
    taken.push([node, pending]);
  }
  for (const [node, pending] of taken) {
    state.fresh.delete(node);
    state.queue.delete(node);
    pending.transmits += 1;
    if (pending.transmits < limit) state.queue.set(node, pending);
  }
  return out;
}

/** Nacks of one indirect probe that make its suspicion witnessed. */
const MIN_WITNESSES = 2;

/** Updates skipped for size before a datagram's piggyback is taken as full. */
const MAX_MISFITS = 4;

const sameUpdate = (a: Update, b: Update) => a.kind === b.kind && a.node === b.node && a.incarnation === b.incarnation;

/** Sends `message` (updates filled in here) to `to`, with what `to` most needs to hear first. */
function reply(state: GossipState, to: string, message: DistributiveOmit<Message, "updates">, step: Step, always: Update[] = []): void {
  const first: Update[] = [...always];
  const m = state.members.get(to);
  if (m === undefined || m.status !== "alive") {
    // `to` may believe this member dead (a partition), and this member believes `to` is not alive:
    // say both, so either side refutes.
    if (m !== undefined) first.push(recordAsUpdate(state, to, m));
    if (always.length === 0) first.push(selfAlive(state));
  }
  step.send.push({ to, message: { ...message, updates: piggyback(state, first) } as Message });
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function recordAsUpdate(state: GossipState, name: string, m: Member): Update {
  switch (m.status) {
    case "alive":
      return { kind: "alive", node: name, incarnation: m.incarnation, ready: m.ready };
    case "suspect": {
      const witnesses = m.suspicion?.witnesses ?? 0;
      return witnesses > 0 ? aged(state, { kind: "suspect", node: name, incarnation: m.incarnation, from: state.self, witnesses }) : { kind: "suspect", node: name, incarnation: m.incarnation, from: state.self };
    }
    case "dead":
      return { kind: "dead", node: name, incarnation: m.incarnation, from: state.self };
    case "left":
      return { kind: "dead", node: name, incarnation: m.incarnation, from: name };
  }
}

/** This member's whole view, for a joining member: suspects as alive + suspect, so readiness is kept. */
function viewAsUpdates(state: GossipState): Update[] {
  const out: Update[] = [selfAlive(state)];
  for (const [name, m] of state.members) {
    if (m.status === "suspect") out.push({ kind: "alive", node: name, incarnation: m.incarnation, ready: m.ready });
    out.push(recordAsUpdate(state, name, m));
  }
  return out;
}

function chunks(state: GossipState, updates: Update[]): Update[][] {
  const out: Update[][] = [];
  let current: Update[] = [];
  let size = 0;
  for (const u of updates) {
    const s = state.config.updateSize(u);
    if (current.length > 0 && size + s > state.config.maxPiggybackBytes) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(u);
    size += s;
  }
  if (current.length > 0) out.push(current);
  return out;
}

const selfAlive = (state: GossipState): Update => ({ kind: "alive", node: state.self, incarnation: state.incarnation, ready: state.phase === "ready" });

/** Smaller than any update's encoding: once the budget is below it, nothing more fits. */
const MIN_UPDATE_BYTES = 11;

/**
 * Up to `count` distinct random members that are up (not `except`): drawn from the peer list and
 * kept when up, so it costs O(count) when most are up; falls back to a scan when few are.
 */
function sampleUp(state: GossipState, count: number, except: string | undefined): string[] {
  const picked = new Set<string>();
  const list = state.peerList;
  for (let tries = 0; tries < count * 4 && picked.size < count && list.length > 0; tries++) {
    const name = list[Math.floor(state.config.random() * list.length)] as string;
    if (name !== except && isUp(state.members.get(name))) picked.add(name);
  }
  if (picked.size < count) {
    for (const name of shuffle(state, upMembers(state))) {
      if (picked.size >= count) break;
      if (name !== except) picked.add(name);
    }
  }
  return [...picked];
}

/**
 * A random member that is dead or never heard of. (It used to be drawn from the whole list, 8 tries: with one
 * such member among a thousand it was found about once a minute, so a member that missed a refutation after
 * a partition healed kept counting that member dead.)
 */
function sampleDown(state: GossipState): string | undefined {
  if (state.down.size === 0) return undefined;
  let i = Math.floor(state.config.random() * state.down.size);
  for (const name of state.down) if (i-- === 0) return name;
  return undefined;
}

/** A random member counted joining for longer than `joiningLimitMs`. */
function sampleLongJoining(state: GossipState, now: number): string | undefined {
  if (state.joining.size === 0) return undefined;
  const long: string[] = [];
  for (const name of state.joining) {
    const since = state.members.get(name)?.joiningSince;
    if (since !== undefined && now - since > state.config.joiningLimitMs) long.push(name);
  }
  return long.length === 0 ? undefined : long[Math.floor(state.config.random() * long.length)];
}

function upMembers(state: GossipState): string[] {
  const out: string[] = [];
  for (const [name, m] of state.members) if (isUp(m)) out.push(name);
  return out;
}

/** Round robin over a shuffled list of the members up, reshuffled at each pass (SWIM's bounded detection). */
function nextProbeTarget(state: GossipState): string | undefined {
  for (let tries = 0; tries < 2; tries++) {
    while (state.probeIndex < state.probeOrder.length) {
      const name = state.probeOrder[state.probeIndex++] as string;
      if (isUp(state.members.get(name))) return name;
    }
    state.probeOrder = shuffle(state, upMembers(state));
    state.probeIndex = 0;
  }
  return undefined;
}

function shuffle(state: GossipState, from: string[]): string[] {
  const out = [...from];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(state.config.random() * (i + 1));
    [out[i], out[j]] = [out[j] as string, out[i] as string];
  }
  return out;
}

function nextSeq(state: GossipState): number {
  state.seq = (state.seq + 1) % 0x1_0000_0000;
  return state.seq;
}

function scaled(state: GossipState, ms: number): number {
  return ms * (state.localHealth + 1);
}

function shiftDeadlines(state: GossipState, gap: number): void {
  state.nextProbeAt += gap;
  state.nextGossipAt += gap;
  state.nextReconnectAt += gap;
  state.healingUntil += gap;
  state.nextSyncAt += gap;
  if (state.nextPushPullAt !== Number.POSITIVE_INFINITY) state.nextPushPullAt += gap;
  if (state.peersKnownAt !== undefined) state.peersKnownAt += gap;
  if (state.probe !== undefined) {
    state.probe.timeoutAt += gap;
    state.probe.retryAt += gap;
    state.probe.deadline += gap;
  }
  for (const relay of state.relays.values()) relay.nackAt += gap;
  // Only suspects have a suspicion and only joining members a joiningSince: every stall of a process hosting
  // hundreds of members (the simulation) walked every member's whole view.
  for (const name of state.suspects) {
    const suspicion = state.members.get(name)?.suspicion;
    if (suspicion === undefined) continue;
    suspicion.startedAt += gap;
    if (suspicion.askedUntil !== undefined) suspicion.askedUntil += gap;
  }
  for (const name of state.joining) {
    const m = state.members.get(name);
    if (m?.joiningSince !== undefined) m.joiningSince += gap;
  }
}
