// Processes the benchmarks start (stopped by PID, never by name) and what /proc says about them.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Scope } from "./scope.ts";

export interface Started {
  name: string;
  pid: number;
  child: ChildProcess;
  logPath: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logPath: string;
  /** `taskset -c <cpus>` */
  cpus?: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts a process (pinned with taskset when asked) whose output goes to a log file; registered in `scope`. */
export function startProcess(scope: Scope, opts: StartOptions): Started {
  const argv = opts.cpus === undefined ? [opts.command, ...opts.args] : ["taskset", "-c", opts.cpus, opts.command, ...opts.args];
  const log = createWriteStream(opts.logPath, { flags: "a" });
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  if (child.pid === undefined) throw new Error(`${opts.name}: could not start ${argv.join(" ")}`);
  const pid = child.pid;
  const stop = async (graceMs = 5000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  scope.defer(() => stop());
  return { name: opts.name, pid, child, logPath: opts.logPath, exited, stop };
}

export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** The process and its descendants (nginx workers, cluster workers), from /proc's ppid links. */
export async function processTree(root: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(fields[1]);
    if (!parents.has(ppid)) parents.set(ppid, []);
    parents.get(ppid)?.push(Number(entry));
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    tree.push(pid);
    queue.push(...(parents.get(pid) ?? []));
  }
  return tree;
}

/** CPU seconds (user + system) used so far by the processes. */
export async function cpuSeconds(pids: readonly number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    if (stat === "") continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // after the comm field: state is [0]; utime and stime are fields 14 and 15 of the full line
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLK_TCK;
}

/** Resident memory in MiB (VmRSS), summed over the processes. */
export async function rssMiB(pids: readonly number[]): Promise<number> {
  let kib = 0;
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    kib += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return kib / 1024;
}

export interface Usage {
  /** mean CPU over the window, in % of one core */
  cpuPercent: number;
  /** RSS at the end of the window, MiB */
  rssMiB: number;
  /** highest RSS sampled during the window, MiB */
  peakRssMiB: number;
}

/** Measures a process tree's CPU and RSS while `during` runs (or for `during` milliseconds). */
export async function measureUsage<T>(root: number, during: (() => Promise<T>) | number): Promise<{ usage: Usage; result: T | undefined }> {
  const pids = await processTree(root);
  const cpu0 = await cpuSeconds(pids);
  const t0 = performance.now();
  let peak = await rssMiB(pids);
  let done = false;
  const sampler = (async () => {
    while (!done) {
      await sleep(200);
      peak = Math.max(peak, await rssMiB(pids));
    }
  })();
  let result: T | undefined;
  try {
    if (typeof during === "number") await sleep(during);
    else result = await during();
  } finally {
    done = true;
    await sampler;
  }
  const seconds = (performance.now() - t0) / 1000;
  const rss = await rssMiB(pids);
  const usage = { cpuPercent: ((await cpuSeconds(pids)) - cpu0) / seconds * 100, rssMiB: rss, peakRssMiB: Math.max(peak, rss) };
  return { usage, result };
}

/** Runs a command to completion and returns stdout + stderr (nginx prints its version on stderr). */
export function commandOutput(command: string, args: string[]): string {
  const res = spawnSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  return `${res.stdout ?? ""}${res.stderr ?? ""}`.trim();
}

/** Busy fraction (0–100) of each CPU over the time `during` runs, from /proc/stat. */
export async function cpuBusy<T>(during: () => Promise<T>): Promise<{ busy: number[]; result: T }> {
  const read = async () =>
    (await readFile("/proc/stat", "utf8"))
      .split("\n")
      .filter((l) => /^cpu\d+ /.test(l))
      .map((l) => {
        const v = l.split(/\s+/).slice(1).map(Number);
        const idle = (v[3] ?? 0) + (v[4] ?? 0);
        const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
        return { idle, total };
      });
  const before = await read();
  const result = await during();
  const after = await read();
  const busy = after.map((a, i) => {
    const b = before[i] ?? { idle: 0, total: 0 };
    const total = a.total - b.total;
    return total > 0 ? (1 - (a.idle - b.idle) / total) * 100 : Number.NaN;
  });
  return { busy, result };
}

/** CPU seconds used by this process's exited, reaped children (wrk after a run), from /proc/self/stat. */
export async function reapedChildrenCpuSeconds(): Promise<number> {
  const stat = await readFile("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // cutime and cstime are fields 16 and 17 of the full line
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
}

/** Runs a load tool to its end and parses what it printed (stdout and stderr together); a non-zero exit rejects with that output. */
export function runAndParse<T>(argv: readonly string[], parse: (out: string) => T): Promise<T> {
  const [cmd, ...args] = argv;
  const shown = argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const collect = (c: string) => {
      out += c;
    };
    child.stdout.setEncoding("utf8").on("data", collect);
    child.stderr.setEncoding("utf8").on("data", collect);
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`${shown} exited ${code}: ${out}`));
      try {
        resolve(parse(out));
      } catch (err) {
        reject(err);
      }
    });
  });
}
