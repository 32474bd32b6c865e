// wrk runs and what its --latency report says.
import { runAndParse } from "./proc.ts";

export interface WrkOptions {
  url: string;
  connections: number;
  threads: number;
  durationS: number;
  host?: string;
  cpus?: string;
  timeoutS?: number;
  /** more request header lines (`Connection: close`: a new connection, and TLS handshake, per request) */
  headers?: string[];
  /** RLIMIT_NOFILE for wrk (`prlimit --nofile`): a connection is a file descriptor */
  nofile?: number;
}

export interface WrkResult {
  requestsPerSec: number;
  requests: number;
  /** milliseconds */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: { connect: number; read: number; write: number; timeout: number; non2xx: number };
  totalErrors: number;
}

export function wrkArgs(opts: WrkOptions): string[] {
  const args = [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    `--timeout`, `${opts.timeoutS ?? 5}s`,
    "--latency",
  ];
  if (opts.host !== undefined) args.push("-H", `Host: ${opts.host}`);
  for (const h of opts.headers ?? []) args.push("-H", h);
  args.push(opts.url);
  const wrk = opts.nofile === undefined ? ["wrk", ...args] : ["prlimit", `--nofile=${opts.nofile}`, "wrk", ...args];
  return opts.cpus === undefined ? wrk : ["taskset", "-c", opts.cpus, ...wrk];
}

export const wrkCommand = (opts: WrkOptions): string => wrkArgs(opts).map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(" ");

export function runWrk(opts: WrkOptions): Promise<WrkResult> {
  return runAndParse(wrkArgs(opts), parseWrk);
}

const toMs = (value: string, unit: string): number => Number(value) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit] ?? Number.NaN);

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  if (rps === null || total === null) throw new Error(`unreadable wrk output:\n${out}`);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(out);
    return m === null ? Number.NaN : toMs(m[1] as string, m[2] as string);
  };
  const maxLine = /^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)/m.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors = {
    connect: Number(sock?.[1] ?? 0),
    read: Number(sock?.[2] ?? 0),
    write: Number(sock?.[3] ?? 0),
    timeout: Number(sock?.[4] ?? 0),
    non2xx: Number(non2xx?.[1] ?? 0),
  };
  return {
    requestsPerSec: Number(rps[1]),
    requests: Number(total[1]),
    p50: pct("50"),
    p90: pct("90"),
    p99: pct("99"),
    max: maxLine === null ? Number.NaN : toMs(maxLine[1] as string, maxLine[2] as string),
    errors,
    totalErrors: errors.connect + errors.read + errors.write + errors.timeout + errors.non2xx,
  };
}
