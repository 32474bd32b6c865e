// The native data plane (packages/dataplane) against nginx and today's Node data plane, one core each at 64
// keep-alive connections: the first measurement of issue 12's target (>= 1.0x nginx requests/s per core).
// Each proxy is its own process pinned to CPU 1 with the same one-route table; wrk and the nginx backend on
// CPU 0; runs interleaved. No API server: the table is compiled in the proxy process.
import { join } from "node:path";
import { freePort } from "@bollard/lab";
import { backendHttp, NGINX, proxyHttp, startNginx } from "./lib/nginx.ts";
import type { Part, PartOutput, Table } from "./lib/part.ts";
import { cpuBusy, measureUsage, type Started, startProcess, waitUntil } from "./lib/proc.ts";
import { canConnect } from "./lib/nginx.ts";
import { fmt, median, ratio } from "./lib/stats.ts";
import { runWrk, type WrkOptions, type WrkResult, wrkCommand } from "./lib/wrk.ts";

const RUNS = Number(process.env.BENCH_DATAPLANE_RUNS ?? 3);
const DURATION_S = Number(process.env.BENCH_DATAPLANE_SECONDS ?? 10);
const WARMUP_S = 3;
const HOST = "bench.local";
const nodeBin = process.execPath;
const mainScript = join(import.meta.dirname, "lib", "dataplane-main.ts");

interface Target {
  name: string;
  port: number;
  process: Started;
}

interface Run {
  wrk: WrkResult;
  cpuPercent: number;
  rssMiB: number;
}

export const part: Part = {
  name: "dataplane",
  title: "Native data plane vs nginx vs the Node data plane, one core each, 64 connections",
  async run(ctx): Promise<PartOutput> {
    const backendPort = await freePort();
    await startNginx(ctx.scope, { name: "backend", dir: ctx.dir, workers: 1, cpus: "0", http: backendHttp(backendPort), port: backendPort });
    const ports = { nginx: await freePort(), native: await freePort(), node: await freePort() };
    const nginx = await startNginx(ctx.scope, { name: "nginx-proxy", dir: ctx.dir, workers: 1, cpus: "1", http: proxyHttp(ports.nginx, backendPort), port: ports.nginx });
    const startPlane = async (kind: "native" | "node", port: number) => {
      const proc = startProcess(ctx.scope, { name: `${kind}-plane`, command: nodeBin, args: [mainScript, kind, String(port), String(backendPort)], logPath: join(ctx.dir, `${kind}-plane.log`), cpus: "1" });
      await waitUntil(`${kind} plane listening on ${port}`, () => canConnect(port), 20_000);
      return proc;
    };
    const targets: Target[] = [
      { name: "nginx", port: ports.nginx, process: nginx },
      { name: "native data plane", port: ports.native, process: await startPlane("native", ports.native) },
      { name: "Node data plane (createProxy)", port: ports.node, process: await startPlane("node", ports.node) },
    ];
    const wrk = (t: Target): WrkOptions => ({ url: `http://127.0.0.1:${t.port}/`, host: HOST, connections: 64, threads: 1, durationS: DURATION_S, cpus: "0" });
    for (const t of targets) await runWrk({ ...wrk(t), durationS: WARMUP_S });
    const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]));
    for (let r = 0; r < RUNS; r++) {
      for (const t of targets) {
        const { result } = await cpuBusy(() => measureUsage(t.process.pid, () => runWrk(wrk(t))));
        const run: Run = { wrk: result.result as WrkResult, cpuPercent: result.usage.cpuPercent, rssMiB: result.usage.peakRssMiB };
        runs.get(t.name)?.push(run);
        ctx.log(`run ${r + 1}/${RUNS} ${t.name}: ${fmt(run.wrk.requestsPerSec)} req/s, p99 ${fmt(run.wrk.p99, "ms")}, errors ${run.wrk.totalErrors}, CPU ${fmt(run.cpuPercent)} %, RSS ${fmt(run.rssMiB, "MiB")}`);
      }
    }
    const series = targets.map((t) => {
      const rs = runs.get(t.name) ?? [];
      return {
        name: t.name,
        rps: median(rs.map((r) => r.wrk.requestsPerSec)),
        perCore: median(rs.map((r) => r.wrk.requestsPerSec / (r.cpuPercent / 100))),
        p50: median(rs.map((r) => r.wrk.p50)),
        p99: median(rs.map((r) => r.wrk.p99)),
        errors: rs.reduce((a, r) => a + r.wrk.totalErrors, 0),
        rss: Math.max(...rs.map((r) => r.rssMiB)),
        cpu: median(rs.map((r) => r.cpuPercent)),
        runs: rs.map((r) => fmt(r.wrk.requestsPerSec)).join(", "),
      };
    });
    const [n] = series as [(typeof series)[number]];
    const table: Table = {
      caption: `64 connections, each proxy pinned to CPU 1, wrk and the nginx backend on CPU 0; ${RUNS} interleaved runs × ${DURATION_S} s after a ${WARMUP_S} s warm-up:`,
      columns: ["proxy", "requests/s (median)", "runs", "vs nginx", "req/s per proxy core", "vs nginx per core", "p50", "p99", "errors", "proxy CPU", "proxy RSS"],
      rows: series.map((s) => [s.name, fmt(s.rps), s.runs, ratio(s.rps, n.rps), fmt(s.perCore), ratio(s.perCore, n.perCore), fmt(s.p50, "ms"), fmt(s.p99, "ms"), fmt(s.errors), `${fmt(s.cpu)} %`, fmt(s.rss, "MiB")]),
    };
    const native = series[1] as (typeof series)[number];
    return {
      commands: [
        `taskset -c 0 ${NGINX} -c <dir>/backend/nginx.conf   # return 200`,
        `taskset -c 1 ${NGINX} -c <dir>/nginx-proxy/nginx.conf   # upstream keepalive 256, the ingress's header work`,
        `taskset -c 1 node bench/lib/dataplane-main.ts native <port> <backend-port>   # @bollard/dataplane, 1 runtime thread`,
        `taskset -c 1 node bench/lib/dataplane-main.ts node <port> <backend-port>     # @bollard/ingress createProxy`,
        wrkCommand(wrk(targets[1] as Target)),
        "npm run bench -- dataplane",
      ],
      tables: [table],
      verdicts: [
        {
          id: "12",
          what: "native data plane, 64 connections, one core each",
          target: ">= 1.0x nginx requests/s per core; p99 <= 1.2x nginx's",
          measured: `${(native.perCore / n.perCore).toFixed(2)}x per core (${fmt(native.perCore)} vs ${fmt(n.perCore)}); p99 ${fmt(native.p99, "ms")} vs ${fmt(n.p99, "ms")}; RSS ${fmt(native.rss, "MiB")}`,
          met: native.perCore >= n.perCore && native.p99 <= 1.2 * n.p99,
        },
      ],
      notes: [
        "The native plane runs inside a Node process (the N-API module loaded by @bollard/dataplane), so its RSS includes Node's own; it is served by one tokio worker thread while the JavaScript thread idles.",
        "Per core: requests/s divided by the CPU the proxy process used during the run (/proc/<pid>/stat). The machine is shared with other work; the ratios are of runs interleaved in one session.",
      ],
      data: { series },
    };
  },
};
