// h2load (nghttp2-client) runs and what its report says: HTTP/2 over TLS (ALPN h2), streams multiplexed on each
// connection. It reports mean and max latency, not percentiles.
import { runAndParse } from "./proc.ts";

export interface H2loadOptions {
  url: string;
  /** the :authority to send (routing) */
  authority: string;
  connections: number;
  /** streams in flight per connection */
  streams: number;
  durationS: number;
  warmUpS: number;
  cpus?: string;
}

export interface H2loadResult {
  requestsPerSec: number;
  requests: number;
  succeeded: number;
  failed: number;
  /** milliseconds */
  meanMs: number;
  maxMs: number;
  /** failed requests (h2load counts errored and timed-out ones among them) plus answers other than 2xx */
  totalErrors: number;
}

export function h2loadArgs(o: H2loadOptions): string[] {
  const args = ["-t1", `-c${o.connections}`, `-m${o.streams}`, `-D${o.durationS}`, `--warm-up-time=${o.warmUpS}`, "-H", `:authority: ${o.authority}`, o.url];
  return o.cpus === undefined ? ["h2load", ...args] : ["taskset", "-c", o.cpus, "h2load", ...args];
}

export const h2loadCommand = (o: H2loadOptions): string => h2loadArgs(o).map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(" ");

export function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  return runAndParse(h2loadArgs(o), parseH2load);
}

const toMs = (value: string, unit: string): number => Number(value) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? Number.NaN);

export function parseH2load(out: string): H2loadResult {
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const reqs = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const latency = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  if (rps === null || reqs === null || codes === null || latency === null) throw new Error(`unreadable h2load output:\n${out}`);
  const n = (m: RegExpExecArray, i: number) => Number(m[i]);
  return {
    requestsPerSec: Number(rps[1]),
    requests: n(reqs, 2),
    succeeded: n(reqs, 3),
    failed: n(reqs, 4),
    meanMs: toMs(latency[5] as string, latency[6] as string),
    maxMs: toMs(latency[3] as string, latency[4] as string),
    totalErrors: n(reqs, 4) + n(codes, 2) + n(codes, 3) + n(codes, 4),
  };
}
