// Starts the data plane under test in a process of its own and talks to it only through its listeners, so the
// hostile-input suites judge behaviour on the wire (and survival, and memory) whatever implements it.
// The suites name the implementation in each test (`planeKinds()`): the native data plane (packages/dataplane).
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ProxyOptions } from "../../src/index.ts";
import type { IngressSpec } from "../helpers/backends.ts";

/** The data plane's options (minus the certificate, which the process makes). */
export type DataPlaneOptions = Partial<Omit<ProxyOptions, "defaultCertificate">>;

export interface DataPlane {
  pid: number;
  httpPort: number;
  httpsPort: number;
  /** Replaces the routes; resolves once they serve. */
  setRoutes(ingresses: IngressSpec[]): Promise<void>;
  /** still running? */
  alive(): boolean;
  /** resident set size, KiB */
  rssKiB(): number;
  /** Asks for a full garbage collection (where the implementation has one), so RSS compares live data; returns
   * what the implementation says of its memory then (free text). */
  collect(): Promise<string>;
  /** what it wrote to stderr so far (a crash's stack, a log line) */
  stderr(): string;
  stop(): Promise<void>;
}

const MAINS: Record<string, string> = {
  // the Rust data plane (packages/dataplane, built by `npm run build:dataplane`)
  native: fileURLToPath(new URL("../../../dataplane/test/hostile-main.ts", import.meta.url)),
};

/** The implementations this run judges. */
export function planeKinds(): string[] {
  return Object.keys(MAINS);
}

export async function startDataPlane(kind: string, options: DataPlaneOptions = {}): Promise<DataPlane> {
  const main = MAINS[kind];
  if (main === undefined) throw new Error(`no data plane "${kind}" (have: ${Object.keys(MAINS).join(", ")})`);
  const child: ChildProcess = spawn(process.execPath, ["--expose-gc", main, JSON.stringify(options)], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString("utf8");
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const lines: Interface = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const pending: ((line: string) => void)[] = [];
  const queued: string[] = [];
  lines.on("line", (line) => {
    const waiter = pending.shift();
    if (waiter !== undefined) waiter(line);
    else queued.push(line);
  });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const line = queued.shift();
      if (line !== undefined) return resolve(line);
      pending.push(resolve);
      void exit.then(() => reject(new Error(`the data plane exited: ${err.slice(-2000)}`)));
    });
  const ports = JSON.parse(await nextLine()) as { httpPort: number; httpsPort: number };
  return {
    pid: child.pid as number,
    httpPort: ports.httpPort,
    httpsPort: ports.httpsPort,
    async setRoutes(ingresses) {
      child.stdin?.write(`${JSON.stringify(ingresses)}\n`);
      const ack = await nextLine();
      if (ack !== "applied") throw new Error(`the data plane answered ${JSON.stringify(ack)} to new routes`);
    },
    async collect() {
      child.stdin?.write("gc\n");
      const ack = await nextLine();
      if (!ack.startsWith("collected")) throw new Error(`the data plane answered ${JSON.stringify(ack)} to gc`);
      return ack.slice("collected".length).trim();
    },
    alive: () => !exited,
    rssKiB() {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
    },
    stderr: () => err,
    async stop() {
      if (exited) return;
      child.stdin?.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
