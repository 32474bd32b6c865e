// The membership simulation: N real members (startMembership, real UDP) on loopback addresses inside a
// network namespace of their own, in a few processes, through: start-up, a steady window with packet loss
// (nft drops a random share of membership datagrams), a member killed (SIGKILL of its process), a member
// paused (SIGSTOP, then SIGCONT) and a partition (nft drops datagrams between a minority's addresses and the
// rest), measuring detection times, false deaths and bytes per node. Needs root (ip netns, nft).
// Used by membership-sim.netns.test.ts (small N) and bench/membership.ts (run as a program: prints JSON).
//   node membership-sim.ts --members 1000 [--workers 4] [--loss 5] [--kills 1] [--pause-ms 2000] [--partition-ms 5000]
//     [--steady-ms 10000] [--settle-ms 0] [--phase-timeout-ms 30000]
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { SimConfig } from "./membership-sim-worker.ts";

const run = promisify(execFile);
const WORKER = fileURLToPath(new URL("./membership-sim-worker.ts", import.meta.url));
/** The members killed one after another, each in a process of its own: `victim-killed`, `victim-killed-2`, … */
const killedName = (i: number) => (i === 0 ? "victim-killed" : `victim-killed-${i + 1}`);
const PAUSED = "victim-paused";

export interface SimulationOptions {
  members: number;
  /** Processes hosting the ordinary members (the minority, each killed member and the paused one get their own). */
  workers: number;
  lossPercent: number;
  /** Members killed one after another, each from a calm cluster (default 1): one kill's p50 hangs on when the first prober picks it. */
  kills?: number;
  pauseMs: number;
  partitionMs: number;
  steadyMs: number;
  /**
   * From convergence until the steady window opens: start-up's news is still being retransmitted for a while
   * after every member counts every member (at 1,000, 5.6 kB/s per node 0–16 s after, against 0.4 later). Also
   * the wait after the kill and after the pause before the next event (at least 1 s).
   */
  settleMs?: number;
  /** Longest wait for any phase to settle. */
  phaseTimeoutMs: number;
  log(line: string): void;
}

export interface Change {
  t: number;
  member: string;
  size: number;
  joined?: string[];
  left?: string[];
}

export interface SimulationResult {
  members: number;
  processes: number;
  lossPercent: number;
  /** From spawning the processes until every member runs (loading Node and the code). */
  processStartMs: number;
  /** From every member running (its peers set) until every member counts every member (no loss yet). */
  startupMs: number | null;
  /** `cpuCores`: the member processes' CPU over the window; `driverCores`: this process's (the harness's own). */
  /** `receivedDatagramsPerSecond`: by all members together. */
  steady: { seconds: number; sentBytesPerSecond: number[]; receivedBytesPerSecond: number[]; receivedDatagramsPerSecond: number; cpuCores: number; driverCores: number };
  /** Per observer and kill: ms from SIGKILL until it no longer counts the killed member (null: not within the timeout). */
  killDetectionMs: Array<number | null>;
  /** The same, kill by kill. */
  killDetectionMsPerKill: Array<Array<number | null>>;
  /** Per observer: ms from SIGSTOP until it stops counting the paused member, and from SIGCONT until it counts it again. */
  pauseDetectionMs: Array<number | null>;
  pauseRejoinMs: Array<number | null>;
  /** The most times one observer stopped (or started) counting the paused member during the pause phase. */
  pauseMostLeaves: number;
  pauseMostJoins: number;
  /** From the partition's end until every member counts every member but the killed one. */
  partitionHealMs: number | null;
  /**
   * Observers that stopped counting someone they had no reason to (not killed, not paused, not across an
   * active partition), when that member's own process had not stalled either.
   */
  falseDeaths: Array<{ t: number; observer: string; node: string; phase: string }>;
  /** The same, for members whose process had stalled (> 250 ms without running) within the 3 s before. */
  stalledDeaths: Array<{ t: number; observer: string; node: string; phase: string; stallMs: number }>;
  /** Stalls of the simulation's processes: how often the machine did not run them. */
  stalls: Array<{ t: number; ms: number; members: number }>;
  /** CPU seconds the member processes (but the killed one) and this process (the driver) used over the whole run, and its length. */
  memberCpuSeconds: number;
  driverCpuSeconds: number;
  runSeconds: number;
  loadAverage: number[];
}

export async function runMembershipSimulation(options: SimulationOptions): Promise<SimulationResult> {
  const { log } = options;
  const driverStart = process.cpuUsage();
  const netns = simulationNetns();
  const port = 7946;
  const dir = await mkdtemp(join(tmpdir(), "bollard-gossip-sim-"));
  const children: ChildProcess[] = [];
  const minority = Math.max(1, Math.round(options.members * 0.1));
  const kills = Math.max(1, options.kills ?? 1);
  const ordinary = options.members - 1 - kills - minority;
  if (ordinary < 1) throw new Error(`the simulation needs at least ${3 + kills} members`);
  const killed = Array.from({ length: kills }, (_, i) => killedName(i));
  const isKilled = (name: string) => killed.includes(name);
  const address = (group: number, i: number) => `127.${group}.${(i >> 8) & 255}.${i & 255}`;
  const members: Array<[string, string]> = [
    ...killed.map((name, i) => [name, i === 0 ? "127.3.0.1" : `127.3.1.${i + 1}`] as [string, string]),
    [PAUSED, "127.3.0.2"],
    ...Array.from({ length: minority }, (_, i) => [`minority-${i}`, address(2, i + 1)] as [string, string]),
    ...Array.from({ length: ordinary }, (_, i) => [`member-${i}`, address(1, i + 1)] as [string, string]),
  ];
  const config: SimConfig = { port, key: randomBytes(32).toString("hex"), members };
  const configPath = join(dir, "config.json");
  await writeFile(configPath, JSON.stringify(config));

  const changes: Change[] = [];
  // The changes that name members, by observer: the phases look them up every 50 ms, and a scan of every
  // change (a thousand members' start-up makes hundreds of thousands) per look-up kept the driver busy.
  const named = new Map<string, Change[]>();
  const sizes = new Map<string, number>();
  const bytesReplies: Array<(perMember: Array<[string, number, number, number, number]>) => void> = [];
  let pendingBytes: Array<[string, number, number, number, number]> = [];
  let bytesWaiting = 0;
  let started = 0;
  const stalls: Array<{ t: number; ms: number; hosted: Set<string> }> = [];
  let allStartedAt = 0;

  const nftScript = async (script: string) => {
    const path = join(dir, `nft-${Date.now()}.nft`);
    await writeFile(path, script);
    await run("ip", ["netns", "exec", netns, "nft", "-f", path]);
  };

  await run("ip", ["netns", "add", netns]);
  try {
    await run("ip", ["-n", netns, "link", "set", "lo", "up"]);
    // Each member stands for a node, whose kernel answers pings to a closed port with ICMP at up to 1,000 a second
    // (net.ipv4.icmp_msgs_per_sec, per namespace); here one kernel answers for all of them, so it gets their budgets
    // summed. With one node's, the reconnect pings to members already dead (2,000 a second at 1,000 members)
    // exceed it, and a later kill's probes could go unrefused.
    await run("ip", ["netns", "exec", netns, "sysctl", "-q", "-w", `net.ipv4.icmp_msgs_per_sec=${1000 * options.members}`, `net.ipv4.icmp_msgs_burst=${50 * options.members}`]);
    // Datagrams are dropped on their way in, not out: a drop on output fails the sender's sendto (EPERM), which
    // a lossy network does not, and the addon's thrown error for each was a fiftieth of the CPU.
    await nftScript(`table inet gossip_sim {\n  chain input {\n    type filter hook input priority 0;\n  }\n}\n`);

    const spawnWorker = (first: number, count: number) => {
      const hosted = new Set(members.slice(first, first + count).map(([n]) => n));
      // --pdeathsig: a driver stopped by a signal (no `finally`) takes its workers with it.
      // BOLLARD_SIM_NODE_ARGS: extra Node flags for the member processes (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
      const nodeArgs = (process.env.BOLLARD_SIM_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
      const child = spawn("ip", ["netns", "exec", netns, "setpriv", "--pdeathsig", "KILL", "--", process.execPath, ...nodeArgs, WORKER, configPath, String(first), String(count)], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      children.push(child);
      child.stderr?.on("data", (chunk: Buffer) => {
        const text = chunk.toString().trim();
        if (text !== "") log(`worker ${first}+${count}: ${text.slice(0, 500)}`);
      });
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        let event: { type: string } & Record<string, unknown>;
        try {
          event = JSON.parse(line);
        } catch {
          return;
        }
        if (event.type === "stall") {
          stalls.push({ t: event.t as number, ms: event.ms as number, hosted });
        } else if (event.type === "started") {
          started += 1;
          if (started === children.length) allStartedAt = Date.now();
        } else if (event.type === "change") {
          const change = event as unknown as Change;
          changes.push(change);
          sizes.set(change.member, change.size);
          if (change.joined !== undefined || change.left !== undefined) (named.get(change.member) ?? named.set(change.member, []).get(change.member))?.push(change);
        } else if (event.type === "bytes") {
          pendingBytes.push(...(event.perMember as Array<[string, number, number, number, number]>));
          bytesWaiting -= 1;
          if (bytesWaiting === 0) {
            const all = pendingBytes;
            pendingBytes = [];
            for (const reply of bytesReplies.splice(0)) reply(all);
          }
        }
      });
      return child;
    };

    const startedAt = Date.now();
    const killedProcesses: ChildProcess[] = killed.map((_, i) => spawnWorker(i, 1));
    const pausedProcess = spawnWorker(kills, 1);
    spawnWorker(kills + 1, minority);
    const perWorker = Math.ceil(ordinary / options.workers);
    for (let first = kills + 1 + minority; first < members.length; first += perWorker) spawnWorker(first, Math.min(perWorker, members.length - first));
    log(`${members.length} members in ${children.length} processes, namespace ${netns}`);

    const waitUntil = async (what: string, condition: () => boolean, timeoutMs = options.phaseTimeoutMs): Promise<boolean> => {
      const deadline = Date.now() + timeoutMs;
      while (!condition()) {
        if (Date.now() > deadline) {
          log(`not within ${timeoutMs} ms: ${what}`);
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return true;
    };
    const everyone = () => members.length;
    if (!(await waitUntil("every process to start", () => allStartedAt > 0, options.phaseTimeoutMs * 2))) {
      throw new Error(`only ${started} of ${children.length} member processes started within ${(options.phaseTimeoutMs * 2) / 1000} s: the machine is too busy to simulate`);
    }
    const processStartMs = allStartedAt - startedAt;
    const converged = await waitUntil("every member to count every member", () => members.every(([name]) => sizes.get(name) === everyone()));
    const startupMs = converged ? Date.now() - allStartedAt : null;
    const behind = members.filter(([n]) => sizes.get(n) !== everyone());
    log(
      `start-up: ${startupMs === null ? `not converged; ${behind.length} members not counting everyone, e.g. ${behind
        .slice(0, 10)
        .map(([n]) => `${n}=${sizes.get(n)}`)
        .join(" ")}` : `${startupMs} ms`}`,
    );

    // Loss from here on: a random share of membership datagrams is dropped.
    if (options.lossPercent > 0) {
      await nftScript(`add rule inet gossip_sim input udp dport ${port} numgen random mod 1000 < ${Math.round(options.lossPercent * 10)} drop\n`);
    }
    const phases: Array<{ name: string; from: number }> = [{ name: "steady", from: Date.now() }];
    if ((options.settleMs ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, options.settleMs));

    const readBytes = () =>
      new Promise<Map<string, [number, number, number, number]>>((resolve) => {
        bytesWaiting = children.filter((c) => c.exitCode === null && c.signalCode === null && !killedProcesses.includes(c)).length;
        bytesReplies.push((all) => resolve(new Map(all.map(([n, s, r, d, h]) => [n, [s, r, d, h]]))));
        for (const child of children) if (!killedProcesses.includes(child) && child.exitCode === null) child.stdin?.write("bytes\n");
      });
    const cpuTicks = async () => {
      let total = 0;
      for (const child of children) {
        try {
          const stat = (await run("cat", [`/proc/${child.pid}/stat`])).stdout;
          const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
          total += Number(fields[11]) + Number(fields[12]);
        } catch {}
      }
      return total;
    };
    // BOLLARD_SIM_PROFILE_DIR: a CPU profile of each member process over the steady window, the kill (until every
    // member dropped the killed one), and the partition and its healing (<dir>/<phase>-<process>.cpuprofile).
    const profileDir = process.env.BOLLARD_SIM_PROFILE_DIR;
    const profilePhase = (command: "start" | "stop", phase: string) => {
      if (profileDir === undefined) return;
      children.forEach((child, i) => {
        if (child.exitCode === null && child.signalCode === null && !killedProcesses.includes(child)) child.stdin?.write(command === "start" ? "profile-start\n" : `profile-stop ${join(profileDir, `${phase}-${i}.cpuprofile`)}\n`);
      });
    };
    const bytesBefore = await readBytes();
    const cpuBefore = await cpuTicks();
    const driverBefore = process.cpuUsage();
    const steadyFrom = Date.now();
    profilePhase("start", "steady");
    await new Promise((resolve) => setTimeout(resolve, options.steadyMs));
    profilePhase("stop", "steady");
    const bytesAfter = await readBytes();
    const cpuAfter = await cpuTicks();
    const driverUsage = process.cpuUsage(driverBefore);
    const steadySeconds = (Date.now() - steadyFrom) / 1000;
    const sent: number[] = [];
    const received: number[] = [];
    let datagrams = 0;
    for (const [name, [s, r, d]] of bytesAfter) {
      const before = bytesBefore.get(name);
      if (before === undefined) continue;
      sent.push((s - before[0]) / steadySeconds);
      received.push((r - before[1]) / steadySeconds);
      datagrams += d - before[2];
    }
    const cpuCores = (cpuAfter - cpuBefore) / 100 / steadySeconds;
    const driverCores = (driverUsage.user + driverUsage.system) / 1e6 / steadySeconds;
    // Lifeguard's local health stretches a member's probe timing (health + 1): members the machine starves rate
    // themselves slow, and probe, and so detect, more slowly.
    const unhealthy = [...bytesAfter.values()].filter(([, , , h]) => h > 0).length;
    log(
      `steady ${steadySeconds.toFixed(1)} s: ${cpuCores.toFixed(2)} cores (and the driver ${driverCores.toFixed(3)}), ${Math.round(datagrams / steadySeconds)} datagrams/s received, ${unhealthy} members with local health above 0 at its end`,
    );

    // Each event is measured from a calm cluster: the news of the one before (a death spreads to every member
    // and is retransmitted for a while) has died down. At least a second; `settleMs` when longer.
    const calm = Math.max(1000, options.settleMs ?? 0);

    // Members killed, one at a time.
    // (The members to be killed later observe nothing: every kill is watched by the same observers.)
    const observersOf = (victim: string) => members.map(([n]) => n).filter((n) => n !== victim && !isKilled(n));
    const leftAfter = (observer: string, node: string, since: number) => named.get(observer)?.find((c) => c.t >= since && c.left?.includes(node))?.t;
    const joinedAfter = (observer: string, node: string, since: number) => named.get(observer)?.find((c) => c.t >= since && c.joined?.includes(node))?.t;
    const killDetectionMsPerKill: Array<Array<number | null>> = [];
    for (const [i, victim] of killed.entries()) {
      const killedAt = Date.now();
      phases.push({ name: "kill", from: killedAt });
      profilePhase("start", `kill-${i + 1}`);
      killedProcesses[i]?.kill("SIGKILL");
      await waitUntil(`every member to stop counting ${victim}`, () => observersOf(victim).every((o) => leftAfter(o, victim, killedAt) !== undefined));
      profilePhase("stop", `kill-${i + 1}`);
      killDetectionMsPerKill.push(
        observersOf(victim).map((o) => {
          const t = leftAfter(o, victim, killedAt);
          return t === undefined ? null : t - killedAt;
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, calm));
    }
    const killDetectionMs = killDetectionMsPerKill.flat();

    // A member paused for pauseMs.
    const pausedAt = Date.now();
    phases.push({ name: "pause", from: pausedAt });
    pausedProcess.kill("SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    const resumedAt = Date.now();
    pausedProcess.kill("SIGCONT");
    await waitUntil("every member to count the paused one again", () => observersOf(PAUSED).every((o) => joinedAfter(o, PAUSED, resumedAt) !== undefined || leftAfter(o, PAUSED, pausedAt) === undefined));
    await new Promise((resolve) => setTimeout(resolve, calm));
    const pauseDetectionMs = observersOf(PAUSED).map((o) => {
      const t = leftAfter(o, PAUSED, pausedAt);
      return t === undefined ? null : t - pausedAt;
    });
    const pauseRejoinMs = observersOf(PAUSED).map((o) => {
      const t = joinedAfter(o, PAUSED, resumedAt);
      return t === undefined ? null : t - resumedAt;
    });
    let pauseMostLeaves = 0;
    let pauseMostJoins = 0;
    for (const o of observersOf(PAUSED)) {
      const mine = (named.get(o) ?? []).filter((c) => c.t >= pausedAt);
      pauseMostLeaves = Math.max(pauseMostLeaves, mine.filter((c) => c.left?.includes(PAUSED)).length);
      pauseMostJoins = Math.max(pauseMostJoins, mine.filter((c) => c.joined?.includes(PAUSED)).length);
    }

    // A partition: the minority's addresses (127.2/16) and the rest cannot reach each other.
    let partitionHealMs: number | null = null;
    if (options.partitionMs > 0) {
      const partitionedAt = Date.now();
      phases.push({ name: "partition", from: partitionedAt });
      profilePhase("start", "partition");
      await nftScript(
        `add chain inet gossip_sim cut\nadd rule inet gossip_sim input jump cut\nadd rule inet gossip_sim cut ip saddr 127.2.0.0/16 ip daddr != 127.2.0.0/16 drop\nadd rule inet gossip_sim cut ip daddr 127.2.0.0/16 ip saddr != 127.2.0.0/16 drop\n`,
      );
      await new Promise((resolve) => setTimeout(resolve, options.partitionMs));
      await nftScript("flush chain inet gossip_sim cut\n");
      const healedAt = Date.now();
      phases.push({ name: "healed", from: healedAt });
      const survivors = members.map(([n]) => n).filter((n) => !isKilled(n));
      const healed = await waitUntil("every member to count everyone again after the partition", () => survivors.every((o) => sizes.get(o) === survivors.length));
      partitionHealMs = healed ? Date.now() - healedAt : null;
      profilePhase("stop", "partition");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }

    const falseDeaths: SimulationResult["falseDeaths"] = [];
    const stalledDeaths: SimulationResult["stalledDeaths"] = [];
    // A stall is reported when it ends (t), having lasted ms.
    const stallOf = (node: string, t: number) => stalls.filter((s) => s.hosted.has(node) && s.t >= t - 3000 && s.t - s.ms <= t).reduce((most, s) => Math.max(most, s.ms), 0);
    const phaseAt = (t: number) => phases.filter((p) => p.from <= t).at(-1)?.name ?? "start-up";
    for (const change of changes) {
      if (change.t < phases[0]!.from) continue;
      for (const node of change.left ?? []) {
        const phase = phaseAt(change.t);
        if (isKilled(node)) continue;
        if (node === PAUSED && change.t >= pausedAt && (phase === "pause" || phase === "partition" || phase === "healed")) {
          // The first leave of the paused member per observer is expected; it is counted in pauseMostLeaves.
          continue;
        }
        const acrossCut = (change.member.startsWith("minority-") !== node.startsWith("minority-"));
        if (acrossCut && (phase === "partition" || phase === "healed")) continue;
        const stallMs = stallOf(node, change.t);
        if (stallMs > 0) stalledDeaths.push({ t: change.t, observer: change.member, node, phase, stallMs });
        else falseDeaths.push({ t: change.t, observer: change.member, node, phase });
      }
    }

    const memberCpuSeconds = (await cpuTicks()) / 100;
    if (process.env.BOLLARD_SIM_DUMP) await writeFile(process.env.BOLLARD_SIM_DUMP, JSON.stringify({ phases, changes }));
    for (const child of children) if (child.exitCode === null && !killedProcesses.includes(child)) child.stdin?.write("stop\n");
    await Promise.race([
      Promise.all(children.filter((c) => !killedProcesses.includes(c)).map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once("exit", resolve))))),
      new Promise((resolve) => setTimeout(resolve, 5000)),
    ]);
    return {
      members: members.length,
      processes: children.length,
      processStartMs,
      lossPercent: options.lossPercent,
      startupMs,
      steady: { seconds: steadySeconds, sentBytesPerSecond: sent, receivedBytesPerSecond: received, receivedDatagramsPerSecond: datagrams / steadySeconds, cpuCores, driverCores },
      killDetectionMs,
      killDetectionMsPerKill,
      pauseDetectionMs,
      pauseRejoinMs,
      pauseMostLeaves,
      pauseMostJoins,
      partitionHealMs,
      falseDeaths,
      stalledDeaths,
      stalls: stalls.map((s) => ({ t: s.t, ms: s.ms, members: s.hosted.size })),
      memberCpuSeconds,
      driverCpuSeconds: (() => {
        const usage = process.cpuUsage(driverStart);
        return (usage.user + usage.system) / 1e6;
      })(),
      runSeconds: (Date.now() - startedAt) / 1000,
      loadAverage: loadavg(),
    };
  } finally {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, "SIGCONT");
          process.kill(child.pid, "SIGKILL");
        } catch {}
      }
    }
    await run("ip", ["netns", "del", netns]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** The namespace this process's simulation runs in (one at a time). */
const simulationNetns = () => `gsp-sim-${process.pid}`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Stopped by a signal (bench's Ctrl-C): the workers die with this process (pdeathsig), the namespace goes here.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void run("ip", ["netns", "del", simulationNetns()]).catch(() => {}).finally(() => process.exit(130));
    });
  }
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number) => {
    const at = args.indexOf(`--${name}`);
    return at >= 0 ? Number(args[at + 1]) : fallback;
  };
  const result = await runMembershipSimulation({
    members: flag("members", 100),
    workers: flag("workers", 4),
    lossPercent: flag("loss", 5),
    kills: flag("kills", 1),
    pauseMs: flag("pause-ms", 2000),
    partitionMs: flag("partition-ms", 5000),
    steadyMs: flag("steady-ms", 10_000),
    settleMs: flag("settle-ms", 0),
    phaseTimeoutMs: flag("phase-timeout-ms", 30_000),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
