// Gossip cores of a whole cluster on a virtual clock, event by event: a datagram takes `latencyMs`, is
// dropped as `drop` says, and each core runs at its own next deadline. No sockets and no CPU limits, so it
// measures the protocol alone (the real-UDP simulation, membership-sim.ts, measures it on a real machine).
import { seededRandom } from "@bollard/core";
import {
  createGossip,
  DEFAULT_GOSSIP_TIMING,
  type GossipConfig,
  type GossipState,
  liveMembers,
  type Message,
  type Note,
  nextDeadline,
  probeRefused,
  receive,
  type Step,
  setPeers,
  tick,
} from "../../src/membership/gossip.ts";
import { datagramSize, encodedUpdateSize, piggybackBudget } from "../../src/membership/wire.ts";

interface Event {
  at: number;
  order: number;
  member: string;
  /** A datagram to deliver, or (undefined) the member's timer. */
  from?: string;
  message?: Message;
  /** The host of the member `refusedBy` answered this member's ping: nothing listens there (ICMP port unreachable). */
  refusedBy?: string;
  version: number;
}

export class VirtualCluster {
  readonly states = new Map<string, GossipState>();
  readonly down = new Set<string>();
  /** Down members whose process is gone, while their node stays up: their host refuses pings. */
  private readonly killed = new Set<string>();
  /** Datagrams that reached a stopped (paused) member, read when it resumes. */
  private readonly held = new Map<string, Event[]>();
  now = 0;
  drop: (from: string, to: string) => boolean = () => false;
  /** Every note of every member, as it happened. */
  onNote: (member: string, note: Note, at: number) => void = () => {};
  readonly sent = new Map<string, { datagrams: number; bytes: number }>();
  private readonly heap: Event[] = [];
  private order = 0;
  private readonly timerVersion = new Map<string, number>();
  private readonly latencyMs: number;

  constructor(names: string[], options: { seed: number; latencyMs?: number; config?: Partial<GossipConfig> }) {
    const random = seededRandom(options.seed);
    this.latencyMs = options.latencyMs ?? 1;
    // The budget the membership shell gives a cluster of these names.
    const budget = piggybackBudget(Math.max(...names.map((n) => n.length)));
    for (const name of names) {
      const config: GossipConfig = { ...DEFAULT_GOSSIP_TIMING, maxPiggybackBytes: budget, updateSize: encodedUpdateSize, random, ...options.config };
      this.states.set(name, createGossip(config, name, 1000, 0));
      this.sent.set(name, { datagrams: 0, bytes: 0 });
    }
  }

  start(name: string): void {
    this.route(name, setPeers(this.state(name), this.states.keys(), this.now));
  }

  state(name: string): GossipState {
    return this.states.get(name) as GossipState;
  }

  /** How many members `name` counts: what the convergence checks need, without building the sorted list. */
  liveCount(name: string): number {
    return liveMembers(this.state(name)).size;
  }

  live(name: string): string {
    return [...liveMembers(this.state(name))].sort().join(",");
  }

  /** Hands a step's datagrams to the network and schedules the member's next wake-up. */
  route(from: string, step: Step): void {
    for (const note of step.notes) this.onNote(from, note, this.now);
    const counter = this.sent.get(from) as { datagrams: number; bytes: number };
    for (const o of step.send) {
      counter.datagrams += 1;
      counter.bytes += datagramSize(from, o.to, o.message);
      if (!this.drop(from, o.to)) this.push({ at: this.now + this.latencyMs, order: 0, member: o.to, from, message: o.message, version: 0 });
    }
    const version = (this.timerVersion.get(from) ?? 0) + 1;
    this.timerVersion.set(from, version);
    if (this.state(from).peersKnownAt !== undefined) this.push({ at: Math.max(this.now, nextDeadline(this.state(from))), order: 0, member: from, version });
  }

  run(untilMs: number): void {
    let sameInstant = 0;
    for (;;) {
      const event = this.heap[0];
      if (event === undefined || event.at > untilMs) break;
      this.pop();
      sameInstant = event.at === this.now ? sameInstant + 1 : 0;
      // A core whose next deadline never moves past now would spin here forever: that is a bug in it.
      if (sameInstant > 1_000_000) {
        const s = this.state(event.member);
        const detail = { probe: s.probe, nextProbeAt: s.nextProbeAt, nextGossipAt: s.nextGossipAt, queue: s.queue.size + s.fresh.size, nextReconnectAt: s.nextReconnectAt, relays: [...s.relays.values()], suspects: [...s.suspects].map((n) => s.members.get(n)), phase: s.phase, converged: s.converged };
        throw new Error(`a core keeps waking at ${this.now} ms: ${event.member}, next deadline ${nextDeadline(s)}: ${JSON.stringify(detail)}`);
      }
      this.now = event.at;
      if (this.down.has(event.member)) {
        if (event.message !== undefined) this.held.get(event.member)?.push(event);
        // As the kernel of a node whose speaker died answers: the shell tells the core only about its probe's target.
        if (this.killed.has(event.member) && event.message?.type === "ping" && event.from !== undefined) {
          this.push({ at: this.now + this.latencyMs, order: 0, member: event.from, refusedBy: event.member, version: 0 });
        }
        continue;
      }
      const state = this.state(event.member);
      if (event.refusedBy !== undefined) {
        if (state.probe?.target === event.refusedBy) {
          probeRefused(state, this.now);
          this.route(event.member, tick(state, this.now));
        }
      } else if (event.message !== undefined) {
        this.route(event.member, receive(state, event.from as string, event.message, this.now));
      } else if (event.version === this.timerVersion.get(event.member)) {
        this.route(event.member, tick(state, this.now));
      }
    }
    this.now = untilMs;
  }

  /**
   * A member whose process died (SIGKILL) on a node that stays up: it neither hears nor says anything any more, and
   * its node's kernel refuses the pings sent to it.
   */
  kill(name: string): void {
    this.down.add(name);
    this.killed.add(name);
  }

  /** A member whose process stopped (SIGSTOP): what reaches it waits in its socket until it resumes. */
  pause(name: string): void {
    this.down.add(name);
    this.held.set(name, []);
  }

  /** SIGCONT: the waiting datagrams are read first, then its timers (long past) run. */
  resume(name: string): void {
    this.down.delete(name);
    for (const event of this.held.get(name) ?? []) this.route(name, receive(this.state(name), event.from as string, event.message as Message, this.now));
    this.held.delete(name);
    this.route(name, tick(this.state(name), this.now));
  }

  private push(event: Event): void {
    event.order = this.order++;
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as Event, heap[parent] as Event)) break;
      [heap[i], heap[parent]] = [heap[parent] as Event, heap[i] as Event];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Event;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < heap.length && before(heap[l] as Event, heap[smallest] as Event)) smallest = l;
      if (r < heap.length && before(heap[r] as Event, heap[smallest] as Event)) smallest = r;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest] as Event, heap[i] as Event];
      i = smallest;
    }
  }
}

const before = (a: Event, b: Event) => a.at < b.at || (a.at === b.at && a.order < b.order);
