// The membership scenario of membership-sim.ts on a virtual clock (virtual-cluster.ts): the protocol alone,
// without the machine's CPU in the way. Start-up, a steady window with loss, a member killed, one paused 2 s,
// a 5 s partition of 10 % of the members. Prints JSON.
//   node virtual-sim.ts --members 1000 [--loss 5] [--seed 1] [--from-converged]
// --from-converged hands every member the whole view at once instead of running start-up: at 1,000 members
// start-up is most of the run's CPU; the rest of the scenario is the same.
import { fileURLToPath } from "node:url";
import { seededRandom } from "@bollard/core";
import { DEFAULT_GOSSIP_TIMING, type GossipConfig, type GossipTiming, receive, type Update } from "../../src/membership/gossip.ts";
import { VirtualCluster } from "./virtual-cluster.ts";

export interface VirtualSimResult {
  members: number;
  lossPercent: number;
  startupMs: number | null;
  sentBytesPerSecond: number[];
  killDetectionMs: Array<number | null>;
  pauseDetectionMs: Array<number | null>;
  pauseRejoinMs: Array<number | null>;
  pauseMostLeaves: number;
  pauseMostJoins: number;
  partitionHealMs: number | null;
  /** Datagrams all members sent during the partition, and in the 10 s after it ended (healing and its tail). */
  partitionDatagrams: number;
  healDatagrams: number;
  falseDeaths: Array<{ at: number; observer: string; node: string }>;
}

const progress = (what: string, at: number) => {
  if (process.env.BOLLARD_SIM_PROGRESS) process.stderr.write(`${what} at ${at} (cpu ${Math.round(process.cpuUsage().user / 1000)} ms)\n`);
};

export function runVirtualSimulation(options: { members: number; lossPercent: number; seed: number; fromConverged?: boolean; config?: Partial<GossipConfig> }): VirtualSimResult {
  const names = Array.from({ length: options.members }, (_, i) => `member-${i}`);
  const KILLED = names[0] as string;
  const PAUSED = names[1] as string;
  const minority = new Set(names.slice(2, 2 + Math.max(1, Math.round(options.members * 0.1))));
  const c = new VirtualCluster(names, { seed: options.seed, ...(options.config === undefined ? {} : { config: options.config }) });
  const random = seededRandom(options.seed + 1);
  const deaths: Array<{ at: number; observer: string; node: string }> = [];
  const has = new Map<string, Map<string, boolean>>();
  const leaves = new Map<string, number>();
  const joins = new Map<string, number>();
  const rejoined = new Map<string, number>();
  let watchPaused = false;
  c.onNote = (member, note, at) => {
    if (note.kind === "dead") deaths.push({ at, observer: member, node: note.node });
    if (watchPaused && member !== PAUSED && (note.kind === "dead" || note.kind === "alive" || note.kind === "left") && note.node === PAUSED) {
      const live = c.state(member).members.get(PAUSED);
      const counted = live !== undefined && (live.status === "alive" || live.status === "suspect") && live.ready;
      const before = has.get(member)?.get(PAUSED) ?? true;
      if (counted !== before) {
        (has.get(member) ?? has.set(member, new Map()).get(member))?.set(PAUSED, counted);
        if (counted) {
          joins.set(member, (joins.get(member) ?? 0) + 1);
          if (!rejoined.has(member)) rejoined.set(member, at);
        } else leaves.set(member, (leaves.get(member) ?? 0) + 1);
      }
    }
  };
  for (const n of names) c.start(n);
  if (options.fromConverged === true) {
    // Every member's view as start-up leaves it: everyone ready at the incarnation it takes when it says so.
    const view: Update[] = names.map((node) => ({ kind: "alive", node, incarnation: c.state(node).incarnation + 1, ready: true }));
    for (const n of names) c.route(n, receive(c.state(n), n === KILLED ? PAUSED : KILLED, { type: "state", updates: view }, c.now));
  }
  let startupMs: number | null = null;
  for (let t = 100; t <= 30_000; t += 100) {
    c.run(t);
    if (names.every((n) => c.state(n).converged && c.liveCount(n) === names.length)) {
      startupMs = t;
      break;
    }
  }
  progress("loss", c.now);
  const loss = options.lossPercent / 100;
  c.drop = () => random() < loss;
  const steadyFrom = c.now;
  const bytesBefore = new Map([...c.sent].map(([n, s]) => [n, s.bytes]));
  c.run(steadyFrom + 10_000);
  const sentBytesPerSecond = names.map((n) => ((c.sent.get(n)?.bytes ?? 0) - (bytesBefore.get(n) ?? 0)) / 10);

  const firstDeath = (observer: string, node: string, since: number) => deaths.find((d) => d.observer === observer && d.node === node && d.at >= since)?.at;
  progress("killedAt", c.now);
  const killedAt = c.now;
  c.kill(KILLED);
  c.run(killedAt + 10_000);
  const killDetectionMs = names.filter((n) => n !== KILLED).map((o) => {
    const at = firstDeath(o, KILLED, killedAt);
    return at === undefined ? null : at - killedAt;
  });

  progress("pausedAt", c.now);
  const pausedAt = c.now;
  watchPaused = true;
  c.pause(PAUSED);
  c.run(pausedAt + 2000);
  const resumedAt = c.now;
  c.resume(PAUSED);
  c.run(resumedAt + 5000);
  watchPaused = false;
  const observers = names.filter((n) => n !== KILLED && n !== PAUSED);
  const pauseDetectionMs = observers.map((o) => {
    const at = firstDeath(o, PAUSED, pausedAt);
    return at === undefined ? null : at - pausedAt;
  });
  const pauseRejoinMs = observers.map((o) => {
    const at = rejoined.get(o);
    return at === undefined ? null : at - resumedAt;
  });

  progress("partitionedAt", c.now);
  const partitionedAt = c.now;
  const sentDatagrams = () => [...c.sent.values()].reduce((sum, s) => sum + s.datagrams, 0);
  const datagramsBefore = sentDatagrams();
  c.drop = (from, to) => minority.has(from) !== minority.has(to) || random() < loss;
  c.run(partitionedAt + 5000);
  c.drop = () => random() < loss;
  const healedAt = c.now;
  const partitionDatagrams = sentDatagrams() - datagramsBefore;
  let partitionHealMs: number | null = null;
  for (let t = healedAt + 100; t <= healedAt + 30_000; t += 100) {
    c.run(t);
    if (observers.every((n) => c.liveCount(n) === names.length - 1)) {
      partitionHealMs = t - healedAt;
      break;
    }
  }
  if (c.now < healedAt + 10_000) c.run(healedAt + 10_000);
  const healDatagrams = sentDatagrams() - datagramsBefore - partitionDatagrams;
  progress("falseDeaths", c.now);
  const falseDeaths = deaths.filter((d) => {
    if (d.node === KILLED || d.at < steadyFrom) return false;
    if (d.node === PAUSED && d.at >= pausedAt && d.at < partitionedAt) return false;
    const across = minority.has(d.observer) !== minority.has(d.node);
    return !(across && d.at >= partitionedAt);
  });
  return {
    members: names.length,
    lossPercent: options.lossPercent,
    startupMs,
    sentBytesPerSecond,
    killDetectionMs,
    pauseDetectionMs,
    pauseRejoinMs,
    pauseMostLeaves: Math.max(0, ...leaves.values()),
    pauseMostJoins: Math.max(0, ...joins.values()),
    partitionHealMs,
    partitionDatagrams,
    healDatagrams,
    falseDeaths,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number) => {
    const at = args.indexOf(`--${name}`);
    return at >= 0 ? Number(args[at + 1]) : fallback;
  };
  // --probe-interval-ms and the like override the protocol's defaults, to try other settings.
  const config: Partial<GossipConfig> = {};
  for (const key of Object.keys(DEFAULT_GOSSIP_TIMING) as Array<keyof GossipTiming>) {
    const flagName = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    if (args.includes(`--${flagName}`)) config[key] = flag(flagName, DEFAULT_GOSSIP_TIMING[key]);
  }
  const result = runVirtualSimulation({ members: flag("members", 100), lossPercent: flag("loss", 5), seed: flag("seed", 1), fromConverged: args.includes("--from-converged"), config });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
