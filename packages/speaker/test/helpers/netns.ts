// Shared pieces of the network-namespace tests: processes in namespaces, and what the client sees.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import { execIn } from "@bollard/lab";

/** setpriv arguments that drop to nobody with CAP_NET_RAW as the only capability. */
export const NET_RAW_ONLY = [
  "setpriv",
  "--reuid=65534",
  "--regid=65534",
  "--clear-groups",
  "--inh-caps=-all,+net_raw",
  "--ambient-caps=-all,+net_raw",
  "--bounding-set=-all,+net_raw",
  "--",
];

export function spawnInNetns(netns: string, argv: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn("ip", ["netns", "exec", netns, ...argv], { stdio: ["pipe", "pipe", "pipe"], env });
  child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(`[${netns}] ${chunk}`));
  return child;
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Reads a child's stdout one line at a time. */
export function lineReader(child: ChildProcess): () => Promise<string> {
  const lines: Interface = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const queue: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  lines.on("line", (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else queue.push(line);
  });
  return () => {
    const line = queue.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => waiters.push(resolve));
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** MACs that answered `arping` from the client (Habets arping: "60 bytes from MAC (IP): …"). */
export async function arpingMacs(netns: string, ifname: string, ip: string, count = 3): Promise<string[]> {
  const { stdout } = await execIn(netns, "arping", ["-c", String(count), "-w", "3", "-I", ifname, ip], { allowFailure: true });
  return [...stdout.matchAll(/bytes from ([0-9a-f:]{17}) /gi)].map((m) => (m[1] as string).toLowerCase());
}

/** The link-layer address the client's neighbour table holds for `ip`, if any. */
export async function neighbourMac(netns: string, ip: string): Promise<string | undefined> {
  const { stdout } = await execIn(netns, "ip", ["-j", "neigh", "show", "to", ip], { allowFailure: true });
  const entries = JSON.parse(stdout || "[]") as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  return entries.find((e) => e.lladdr !== undefined)?.lladdr?.toLowerCase();
}

/** The target link-layer address ndisc6 resolves for `ip`. */
export async function ndisc6Mac(netns: string, ifname: string, ip: string): Promise<string | undefined> {
  const { stdout } = await execIn(netns, "ndisc6", ["-1", "-r", "3", "-w", "1000", ip, ifname], { allowFailure: true });
  return /Target link-layer address:\s*([0-9A-F:]{17})/i.exec(stdout)?.[1]?.toLowerCase();
}
