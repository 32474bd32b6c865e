// Processes the lab starts: each logs to its own file, dies with the lab (setpriv --pdeathsig), and is
// stopped by PID.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export interface LabProcess {
  name: string;
  netns: string | undefined;
  child: ChildProcess;
  logPath: string;
  /** The podman container the process is (`--runtime podman`); stop() goes through podman. */
  container?: string;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface SpawnLabProcessOptions {
  name: string;
  /** Network namespace to run in; the host's when undefined. */
  netns?: string;
  command: string;
  args: string[];
  logDir: string;
  /** Run as nobody with only CAP_NET_RAW, as the speaker's DaemonSet does. */
  netRawOnly?: boolean;
  env?: NodeJS.ProcessEnv;
}

export const NOBODY = "65534";
const warmScript = join(resolve(dirname(fileURLToPath(import.meta.url)), "../../../.."), "packages/cli/bin/warm-compile-cache.js");
// setpriv --pdeathsig makes the kernel stop our children if this process dies without cleaning up. Without
// util-linux's setpriv the process still runs (for the control plane on a minimal machine), only without that net.
const hasSetpriv = existsSync("/usr/bin/setpriv");

export function spawnLabProcess(opts: SpawnLabProcessOptions): LabProcess {
  const setpriv = ["setpriv", "--pdeathsig", "TERM"];
  if (opts.netRawOnly) {
    setpriv.push(
      "--reuid", NOBODY, "--regid", NOBODY, "--clear-groups",
      "--inh-caps", "-all,+net_raw", "--ambient-caps", "-all,+net_raw", "--bounding-set", "-all,+net_raw",
    );
  }
  const argv = hasSetpriv || opts.netRawOnly ? [...setpriv, "--", opts.command, ...opts.args] : [opts.command, ...opts.args];
  const [cmd, ...args] = opts.netns === undefined ? argv : ["ip", "netns", "exec", opts.netns, ...argv];
  const logPath = join(opts.logDir, `${opts.name}.log`);
  const log = createWriteStream(logPath, { flags: "a" });
  const child = spawn(cmd as string, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    name: opts.name,
    netns: opts.netns,
    child,
    logPath,
    async stop(signal = "SIGTERM", graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Whether a process with this PID exists (signal 0 checks without sending anything). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Fills the compile cache that `bollard` finds with `env` (BOLLARD_COMPILE_CACHE, else the user's default) with every
 * module of its commands, as the given user (Node keeps one cache per user id), with this process's node and
 * `nodeFlags`: V8 keys the cache by the flags that change code (the chart's --memory-saver-mode and --single-threaded
 * do), so a process started with other flags would find nothing in it.
 */
export async function warmCompileCache(env: NodeJS.ProcessEnv, user?: string, nodeFlags: readonly string[] = []): Promise<void> {
  const argv = [process.execPath, ...nodeFlags, warmScript];
  const [cmd, ...args] = user === undefined ? argv : ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", "--", ...argv];
  await promisify(execFile)(cmd as string, args, { env });
}
