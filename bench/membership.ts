// #17 membership at scale: the speaker's gossip membership simulated with N real members (real UDP on
// loopback addresses in a namespace of their own, a few processes), 5 % of datagrams dropped, members killed,
// one paused for 2 s (SIGSTOP) and a partition; detection times, false deaths and bytes per node, by N.
// The simulation itself is packages/speaker/test/helpers/membership-sim.ts (its small-N run is a test).
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Part, PartOutput, Table, Verdict } from "./lib/part.ts";
import { fmt, median, percentile } from "./lib/stats.ts";

const SIMULATION = fileURLToPath(new URL("../packages/speaker/test/helpers/membership-sim.ts", import.meta.url));
const VIRTUAL = fileURLToPath(new URL("../packages/speaker/test/helpers/virtual-sim.ts", import.meta.url));
/** Cluster sizes, smallest first: where the targets stop holding on this machine shows. */
const SIZES = (process.env.BENCH_MEMBERSHIP_SIZES ?? "100,300,1000").split(",").filter((s) => s !== "").map(Number);
/** The virtual clock's sizes: its convergence checks cost O(N²) per 100 ms of virtual time, so 1,000 takes too long. */
const VIRTUAL_SIZES = (process.env.BENCH_MEMBERSHIP_VIRTUAL_SIZES ?? "30,100,300").split(",").filter((s) => s !== "").map(Number);
const WORKERS = Number(process.env.BENCH_MEMBERSHIP_WORKERS ?? 4);
/** Members killed one after another per real run: one kill's p50 hangs on when the first prober picks the victim (about 200 ms on average, exponentially spread). */
const KILLS = Number(process.env.BENCH_MEMBERSHIP_KILLS ?? 3);
/** BENCH_MEMBERSHIP_FROM_CONVERGED=1: the virtual runs skip start-up (every member handed the whole view), most of their CPU at 1,000. */
const FROM_CONVERGED = process.env.BENCH_MEMBERSHIP_FROM_CONVERGED === "1";

interface SimulationResult {
  members: number;
  processes: number;
  processStartMs: number;
  startupMs: number | null;
  steady: { seconds: number; sentBytesPerSecond: number[]; receivedBytesPerSecond: number[]; cpuCores: number };
  killDetectionMs: Array<number | null>;
  killDetectionMsPerKill: Array<Array<number | null>>;
  pauseDetectionMs: Array<number | null>;
  pauseRejoinMs: Array<number | null>;
  pauseMostLeaves: number;
  pauseMostJoins: number;
  partitionHealMs: number | null;
  falseDeaths: unknown[];
  stalledDeaths: unknown[];
  stalls: Array<{ ms: number }>;
  loadAverage: number[];
}

interface VirtualResult {
  members: number;
  startupMs: number | null;
  sentBytesPerSecond: number[];
  killDetectionMs: Array<number | null>;
  pauseDetectionMs: Array<number | null>;
  pauseRejoinMs: Array<number | null>;
  pauseMostLeaves: number;
  pauseMostJoins: number;
  partitionHealMs: number | null;
  falseDeaths: unknown[];
}

/** Runs a simulation program to its end; its last stdout line is the JSON result. */
async function runProgram<T>(ctx: Parameters<Part["run"]>[0], args: string[], env: NodeJS.ProcessEnv = process.env): Promise<T | undefined> {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env });
  ctx.scope.defer(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().trim().split("\n")) ctx.log(`  ${line.slice(0, 300)}`);
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) {
    ctx.log(`${args.join(" ")} exited with ${code}`);
    return undefined;
  }
  return JSON.parse(stdout.trim().split("\n").at(-1) as string) as T;
}

export const part: Part = {
  name: "membership",
  title: "#17 Gossip membership at scale (simulation)",
  async run(ctx): Promise<PartOutput> {
    const commands: string[] = [];
    const virtual: VirtualResult[] = [];
    for (const members of VIRTUAL_SIZES) {
      const args = [VIRTUAL, "--members", String(members), "--loss", "5", "--seed", "1", ...(FROM_CONVERGED ? ["--from-converged"] : [])];
      commands.push(`npx node packages/speaker/test/helpers/virtual-sim.ts ${args.slice(1).join(" ")}`);
      ctx.log(`${members} members on a virtual clock`);
      const result = await runProgram<VirtualResult>(ctx, args);
      if (result !== undefined) virtual.push(result);
    }
    const results: SimulationResult[] = [];
    for (const members of SIZES) {
      const args = [SIMULATION, "--members", String(members), "--workers", String(WORKERS), "--loss", "5", "--kills", String(KILLS), "--pause-ms", "2000", "--partition-ms", "5000", "--steady-ms", "10000", "--settle-ms", "10000", "--phase-timeout-ms", "60000"];
      commands.push(`sudo npx node ${["packages/speaker/test/helpers/membership-sim.ts", ...args.slice(1)].join(" ")}`);
      ctx.log(`${members} members over real UDP`);
      // The whole result and every member's live-set changes are kept for a look afterwards (which member dropped
      // whom, when): the table says how many false deaths, not which.
      const kept = join(tmpdir(), `bollard-bench-membership-${members}`);
      const result = await runProgram<SimulationResult>(ctx, args, { ...process.env, BOLLARD_SIM_DUMP: `${kept}-changes.json` });
      if (result !== undefined) {
        results.push(result);
        await writeFile(`${kept}.json`, JSON.stringify(result));
        ctx.log(`  kept: ${kept}.json, ${kept}-changes.json`);
      }
    }

    const known = (values: Array<number | null>) => values.filter((v): v is number => v !== null);
    const ms = (values: Array<number | null>, p: number) => {
      const k = known(values);
      const missing = values.length - k.length;
      return `${fmt(percentile(k, p))}${missing > 0 ? ` (${missing} never)` : ""}`;
    };
    const kB = (v: number) => fmt(v / 1000);
    const table: Table = {
      caption: "Per cluster size, 5 % of membership datagrams dropped (nft), on this machine's 2 shared CPUs",
      columns: [
        "members (processes)",
        "start-up ms",
        `kill detected p50 / p99 ms (${KILLS} kills)`,
        "kill detected p50, kill by kill",
        "2 s pause detected p50 / p99 ms",
        "rejoin after SIGCONT p50 ms",
        "pause: most drops / rejoins per member",
        "partition healed ms",
        "false deaths",
        "deaths of stalled members",
        "kB/s sent per node p50 / max",
        "kB/s received p50 / max",
        "CPU cores used (ms of CPU per member per s)",
        "process stalls > 250 ms",
      ],
      rows: results.map((r) => [
        `${r.members} (${r.processes})`,
        r.startupMs === null ? "not converged" : fmt(r.startupMs),
        `${ms(r.killDetectionMs, 50)} / ${ms(r.killDetectionMs, 99)}`,
        r.killDetectionMsPerKill.map((k) => ms(k, 50)).join("; "),
        `${ms(r.pauseDetectionMs, 50)} / ${ms(r.pauseDetectionMs, 99)}`,
        ms(r.pauseRejoinMs, 50),
        `${r.pauseMostLeaves} / ${r.pauseMostJoins}`,
        r.partitionHealMs === null ? "not healed" : fmt(r.partitionHealMs),
        String(r.falseDeaths.length),
        String(r.stalledDeaths.length),
        `${kB(median(r.steady.sentBytesPerSecond))} / ${kB(Math.max(...r.steady.sentBytesPerSecond))}`,
        `${kB(median(r.steady.receivedBytesPerSecond))} / ${kB(Math.max(...r.steady.receivedBytesPerSecond))}`,
        `${fmt(r.steady.cpuCores)} (${fmt((r.steady.cpuCores * 1000) / r.members)})`,
        `${r.stalls.length} (longest ${fmt(Math.max(0, ...r.stalls.map((s) => s.ms)))} ms)`,
      ]),
    };
    const virtualTable: Table = {
      caption: `The protocol alone: the same scenario on a virtual clock (no CPU limits, 1 ms per datagram, 5 % loss, seed 1${FROM_CONVERGED ? "; start-up skipped: every member handed the whole view" : ""})`,
      columns: ["members", "start-up ms", "kill detected p50 / p99 ms", "2 s pause detected p50 / p99 ms", "rejoin p50 ms", "pause: most drops / rejoins", "partition healed ms", "false deaths", "bytes/s sent per node p50 / max"],
      rows: virtual.map((r) => [
        String(r.members),
        r.startupMs === null ? "not converged" : fmt(r.startupMs),
        `${ms(r.killDetectionMs, 50)} / ${ms(r.killDetectionMs, 99)}`,
        `${ms(r.pauseDetectionMs, 50)} / ${ms(r.pauseDetectionMs, 99)}`,
        ms(r.pauseRejoinMs, 50),
        `${r.pauseMostLeaves} / ${r.pauseMostJoins}`,
        r.partitionHealMs === null ? "not healed" : fmt(r.partitionHealMs),
        String(r.falseDeaths.length),
        `${fmt(median(r.sentBytesPerSecond))} / ${fmt(Math.max(...r.sentBytesPerSecond))}`,
      ]),
    };
    const largest = results.at(-1);
    const verdicts: Verdict[] = [];
    // The protocol alone at its largest size: the figures of the targets where this machine cannot run that many
    // real members.
    const largestVirtual = virtual.at(-1);
    if (largestVirtual !== undefined) {
      const v = largestVirtual;
      const kill = known(v.killDetectionMs);
      const complete = kill.length === v.killDetectionMs.length;
      const sent = Math.max(...v.sentBytesPerSecond);
      const on = `${v.members} members, virtual clock`;
      verdicts.push(
        { id: "17.1v", what: `killed member detected by all, p50 (${on})`, target: "< 1 s", measured: `${fmt(percentile(kill, 50))} ms`, met: complete && percentile(kill, 50) < 1000 },
        { id: "17.2v", what: `killed member detected by all, p99 (${on})`, target: "< 2 s", measured: `${fmt(percentile(kill, 99))} ms`, met: complete && percentile(kill, 99) < 2000 },
        { id: "17.3v", what: `false deaths at 5 % loss (${on})`, target: "0", measured: String(v.falseDeaths.length), met: v.falseDeaths.length === 0 },
        { id: "17.4v", what: `membership traffic sent per node, most of any node (${on})`, target: "≤ 10 kB/s", measured: `${kB(sent)} kB/s`, met: sent <= 10_000 },
        { id: "17.5v", what: `member paused 2 s: dropped, and taken back, at most once each (${on})`, target: "once each way", measured: `${v.pauseMostLeaves} / ${v.pauseMostJoins}`, met: v.pauseMostLeaves === 1 && v.pauseMostJoins === 1 },
      );
    }
    if (largest !== undefined) {
      const kill = known(largest.killDetectionMs);
      const complete = kill.length === largest.killDetectionMs.length;
      const sent = Math.max(...largest.steady.sentBytesPerSecond, ...largest.steady.receivedBytesPerSecond);
      verdicts.push(
        { id: "17.1", what: `killed member detected by all, p50 (${largest.members} members, ${largest.killDetectionMsPerKill.length} kills)`, target: "< 1 s", measured: `${fmt(percentile(kill, 50))} ms`, met: complete && percentile(kill, 50) < 1000 },
        { id: "17.2", what: `killed member detected by all, p99 (${largest.members} members, ${largest.killDetectionMsPerKill.length} kills)`, target: "< 2 s", measured: `${fmt(percentile(kill, 99))} ms`, met: complete && percentile(kill, 99) < 2000 },
        { id: "17.3", what: `false deaths at 5 % loss (${largest.members} members)`, target: "0", measured: `${largest.falseDeaths.length} (+ ${largest.stalledDeaths.length} of members whose process stalled)`, met: largest.falseDeaths.length === 0 && largest.stalledDeaths.length === 0 },
        { id: "17.4", what: `membership traffic per node, most of any node (${largest.members} members)`, target: "≤ 10 kB/s", measured: `${kB(sent)} kB/s`, met: sent <= 10_000 },
        {
          id: "17.5",
          what: "member paused 2 s: dropped, and taken back, at most once each",
          target: "once each way",
          measured: `${largest.pauseMostLeaves} / ${largest.pauseMostJoins}`,
          met: largest.pauseMostLeaves === 1 && largest.pauseMostJoins === 1,
        },
      );
    }
    return {
      commands,
      tables: [virtualTable, table],
      verdicts,
      notes: [
        "Every member is a real `startMembership` (the speaker's code) bound to its own 127.x address in a network namespace created for the run; each killed member and the paused one have a process of their own, the partitioned minority (10 %) another, the rest share the other processes.",
        "A process stall is a gap of more than 250 ms in the process's own 50 ms timer: the machine did not run it. The liveness thread acks pings and refutes suspicions while a process's JavaScript stalls, but the stalled members' own probes, relayed probes and gossip wait for it, and one thread serves every member of its process (a hundred or more here), so a member of a process that stalled may be dropped; such deaths are listed apart from false ones.",
        `Detection is per observer: from SIGKILL (or SIGSTOP) until that member's live set no longer holds the victim. ${KILLS} members are killed one after another (${KILLS > 1 ? "each 10 s after the last one's death was known everywhere; " : ""}each in a process of its own, on a node that stays up, so its closed port refuses the probes); the kill's p50 and p99 are over every (observer, kill), and the per-kill p50s show how much one kill varies with when the first prober picks the victim.`,
        `Load average (1 min) at the end of each real run: ${results.map((r) => `${r.members} members ${fmt(r.loadAverage[0] ?? 0)}`).join(", ")} — on 2 CPUs shared with other work, so the real runs measure the machine as much as the protocol.`,
      ],
      data: { virtual, results },
    };
  },
};
