// #1/#2/#3 proxy throughput and latency: `bollard ingress` (a real process with its native data plane,
// configured from a real API server with one Ingress) against nginx proxying the same backend with upstream
// keepalive. Where a target misses, `npm run bench -- dataplane` profiles the data plane itself. The backend is
// nginx returning a fixed 200, so it is never the bottleneck. #9's ingress figures under load come from here too.
import { request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@bollard/lab";
import { bollardCommand, ensureNamespace, startBollard, startCluster } from "./lib/cluster.ts";
import { backendHttp, NGINX, proxyHttp, startNginx } from "./lib/nginx.ts";
import type { Part, PartContext, PartOutput, Table, Verdict } from "./lib/part.ts";
import { cpuBusy, cpuSeconds, measureUsage, processTree, reapedChildrenCpuSeconds, rssMiB, type Started, startProcess, type Usage, waitUntil } from "./lib/proc.ts";
import { fmt, median, ratio } from "./lib/stats.ts";
import { runWrk, type WrkOptions, type WrkResult, wrkCommand } from "./lib/wrk.ts";

/** runs per target for #1 (the headline figure) and for #2/#3 */
const RUNS_ONE = 5;
const RUNS = 3;
const DURATION_S = 10;
const WARMUP_S = 3;
const HOST = "bench.local";
const NAMESPACE = "bench";
const TARGET_RATIO = 0.4;

interface Target {
  name: string;
  port: number;
  process: Started;
}

interface Run {
  wrk: WrkResult;
  usage: Usage;
  /** busy % of each CPU during the run */
  busy: number[];
  /** % of a core used by wrk, by the backend, and by everything else on the machine (other people's work) */
  wrkCpu: number;
  backendCpu: number;
  otherCpu: number;
}

interface Series {
  target: string;
  runs: Run[];
  rps: number;
  p50: number;
  p99: number;
  cpu: number;
  /** requests per second per core the proxy used */
  rpsPerCore: number;
  errors: number;
  rss: number;
  otherCpu: number;
}

function summarize(target: string, runs: Run[]): Series {
  const rps = median(runs.map((r) => r.wrk.requestsPerSec));
  const cpu = median(runs.map((r) => r.usage.cpuPercent));
  return {
    target,
    runs,
    rps,
    p50: median(runs.map((r) => r.wrk.p50)),
    p99: median(runs.map((r) => r.wrk.p99)),
    cpu,
    rpsPerCore: median(runs.map((r) => r.wrk.requestsPerSec / (r.usage.cpuPercent / 100))),
    errors: runs.reduce((a, r) => a + r.wrk.totalErrors, 0),
    rss: Math.max(...runs.map((r) => r.usage.peakRssMiB)),
    otherCpu: median(runs.map((r) => r.otherCpu)),
  };
}

/**
 * Runs wrk against each target in turn, `runCount` times (interleaved, so drift hits both alike), after a
 * warm-up; accounts for the CPU of the proxy, the backend, wrk, and whatever else ran on the machine.
 */
async function compare(ctx: PartContext, label: string, targets: Target[], backendPid: number, runCount: number, wrk: (t: Target) => WrkOptions): Promise<Series[]> {
  for (const t of targets) await runWrk({ ...wrk(t), durationS: WARMUP_S });
  const backendPids = await processTree(backendPid);
  const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]));
  for (let r = 0; r < runCount; r++) {
    for (const t of targets) {
      const backend0 = await cpuSeconds(backendPids);
      const wrk0 = await reapedChildrenCpuSeconds();
      const t0 = performance.now();
      const { busy, result } = await cpuBusy(() => measureUsage(t.process.pid, () => runWrk(wrk(t))));
      const seconds = (performance.now() - t0) / 1000;
      const backendCpu = (((await cpuSeconds(backendPids)) - backend0) / seconds) * 100;
      const wrkCpu = (((await reapedChildrenCpuSeconds()) - wrk0) / seconds) * 100;
      const otherCpu = Math.max(0, busy.reduce((a, b) => a + b, 0) - result.usage.cpuPercent - backendCpu - wrkCpu);
      const run: Run = { wrk: result.result as WrkResult, usage: result.usage, busy, wrkCpu, backendCpu, otherCpu };
      runs.get(t.name)?.push(run);
      ctx.log(
        `${label} run ${r + 1}/${runCount} ${t.name}: ${fmt(run.wrk.requestsPerSec)} req/s, p50 ${fmt(run.wrk.p50, "ms")}, p99 ${fmt(run.wrk.p99, "ms")}, errors ${run.wrk.totalErrors}; CPU % of a core: proxy ${fmt(run.usage.cpuPercent)}, backend ${fmt(backendCpu)}, wrk ${fmt(wrkCpu)}, others ${fmt(otherCpu)}`,
      );
    }
  }
  return targets.map((t) => summarize(t.name, runs.get(t.name) ?? []));
}

/** " (12 timeouts in run 3)": which wrk errors, in which runs */
function errorKinds(s: Series): string {
  const parts = s.runs.flatMap((r, i) =>
    Object.entries(r.wrk.errors)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => `${n} ${kind === "non2xx" ? "non-2xx" : kind} in run ${i + 1}`),
  );
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`;
}

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host }, agent: false, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

const seriesTable = (caption: string, series: Series[], reference: Series): Table => ({
  caption,
  columns: ["proxy", "requests/s (median)", "runs", "vs nginx", "p50", "p99", "errors", "proxy CPU", "req/s per proxy core", "vs nginx per core", "proxy RSS", "other processes' CPU"],
  rows: series.map((s) => [
    s.target,
    fmt(s.rps),
    s.runs.map((r) => fmt(r.wrk.requestsPerSec)).join(", "),
    ratio(s.rps, reference.rps),
    fmt(s.p50, "ms"),
    fmt(s.p99, "ms"),
    fmt(s.errors),
    `${fmt(s.cpu)} %`,
    fmt(s.rpsPerCore),
    ratio(s.rpsPerCore, reference.rpsPerCore),
    fmt(s.rss, "MiB"),
    `${fmt(s.otherCpu)} %`,
  ]),
});

export const part: Part = {
  name: "proxy",
  title: "#1–#3 Proxy throughput and latency, side by side with nginx",
  async run(ctx): Promise<PartOutput> {
    const { cp, kube } = await startCluster(ctx.scope, ctx.dir, false);
    const backendPort = await freePort();
    const ports = { nginx: await freePort(), bollard: await freePort(), bollardTls: await freePort(), bare: await freePort() };

    // One Ingress routing bench.local to a Service whose endpoint is the backend on loopback.
    await ensureNamespace(kube, NAMESPACE);
    const objects: [string, unknown][] = [
      ["/apis/networking.k8s.io/v1/ingressclasses", {
        apiVersion: "networking.k8s.io/v1",
        kind: "IngressClass",
        metadata: { name: "bollard", annotations: { "ingressclass.kubernetes.io/is-default-class": "true" } },
        spec: { controller: "bollard.dev/ingress-controller" },
      }],
      // The API server refuses loopback IPs in EndpointSlices (and FQDN slices need a dotted name), so the
      // backend is an ExternalName Service naming localhost: the proxy resolves it when it opens a connection.
      [`/api/v1/namespaces/${NAMESPACE}/services`, {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "backend", namespace: NAMESPACE },
        spec: { type: "ExternalName", externalName: "localhost", ports: [{ name: "http", port: backendPort, protocol: "TCP" }] },
      }],
      [`/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/ingresses`, {
        apiVersion: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: { name: "bench", namespace: NAMESPACE },
        spec: { rules: [{ host: HOST, http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "backend", port: { number: backendPort } } } }] } }] },
      }],
    ];
    for (const [path, body] of objects) {
      const res = await kube.call<{ message?: string }>("POST", path, body);
      if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${res.body?.message ?? ""}`);
    }

    const ingressArgs = (httpPort: number, httpsPort: number, workers: number) => [
      "ingress",
      "--kubeconfig", cp.kubeconfigPath,
      "--bind-address", "127.0.0.1",
      "--http-port", String(httpPort),
      "--https-port", String(httpsPort),
      "--metrics-port", "0",
      "--workers", String(workers),
      "--shutdown-grace", "1",
      "--log-level", "warn",
    ];
    // The same native plane in a process of its own with the same route, and no API server, informers, metrics
    // or status work (as the `dataplane` part runs it): beside `bollard ingress` in the same interleaved runs,
    // the difference between the two is what the full process adds per request.
    const bareArgs = (httpPort: number, workers: number) => [join(import.meta.dirname, "lib", "dataplane-main.ts"), "native", String(httpPort), String(backendPort), "--workers", String(workers)];
    const startBare = async (name: string, httpPort: number, workers: number, cpus?: string) => {
      const proc = startProcess(ctx.scope, { name, command: process.execPath, args: bareArgs(httpPort, workers), logPath: join(ctx.dir, `${name}.log`), ...(cpus === undefined ? {} : { cpus }) });
      await waitUntil(`${name} serving ${HOST}`, async () => (await get(httpPort, HOST)).status === 200, 30_000, 100);
      return proc;
    };
    const startIngress = async (name: string, httpPort: number, workers: number, cpus?: string) => {
      const proc = startBollard(ctx.scope, name, ingressArgs(httpPort, await freePort(), workers), join(ctx.dir, `${name}.log`), cpus);
      await waitUntil(`${name} serving ${HOST}`, async () => (await get(httpPort, HOST)).status === 200, 30_000, 100);
      return proc;
    };

    // #1 and #2: each proxy on CPU 1, wrk and the backend on CPU 0.
    let backend = await startNginx(ctx.scope, { name: "backend", dir: ctx.dir, workers: 1, cpus: "0", http: backendHttp(backendPort), port: backendPort });
    const nginx = await startNginx(ctx.scope, { name: "nginx-proxy", dir: ctx.dir, workers: 1, cpus: "1", http: proxyHttp(ports.nginx, backendPort), port: ports.nginx });
    const bollard = await startIngress("bollard-ingress", ports.bollard, 1, "1");
    const bare = await startBare("data-plane-alone", ports.bare, 1, "1");
    const check = await get(ports.bollard, HOST);
    ctx.log(`bollard ingress answers ${check.status} ${JSON.stringify(check.body)}; nginx answers ${(await get(ports.nginx, HOST)).status}`);
    await sleep(5000);
    const idleBefore = await rssMiB(await processTree(bollard.pid));
    const pinned: Target[] = [
      { name: "nginx", port: ports.nginx, process: nginx },
      { name: "bollard ingress", port: ports.bollard, process: bollard },
      { name: "data plane alone", port: ports.bare, process: bare },
    ];
    const wrkPinned = (connections: number) => (t: Target): WrkOptions => ({ url: `http://127.0.0.1:${t.port}/`, host: HOST, connections, threads: 1, durationS: DURATION_S, cpus: "0" });
    const one = await compare(ctx, "#1 64 connections", pinned, backend.pid, RUNS_ONE, wrkPinned(64));
    const many = await compare(ctx, "#2 1000 connections", pinned.slice(0, 2), backend.pid, RUNS, wrkPinned(1000));
    const bollardUnderLoad = one[1]?.runs.map((r) => r.usage) ?? [];
    // Idle again: the data plane gives a burst's memory back within a few of its 5 s checks (dataplane native/src/trim.rs).
    await sleep(20_000);
    const idleAfter = await rssMiB(await processTree(bollard.pid));
    await nginx.stop();
    await bollard.stop();
    await bare.stop();

    // #3: two workers each, nothing pinned; the backend gets two workers too.
    await backend.stop();
    backend = await startNginx(ctx.scope, { name: "backend-2", dir: ctx.dir, workers: 2, http: backendHttp(backendPort), port: backendPort });
    const ports3 = { nginx: await freePort(), bollard: await freePort(), bare: await freePort() };
    const nginx2 = await startNginx(ctx.scope, { name: "nginx-proxy-2", dir: ctx.dir, workers: 2, http: proxyHttp(ports3.nginx, backendPort), port: ports3.nginx });
    const bollard2 = await startIngress("bollard-ingress-2", ports3.bollard, 2);
    const bare2 = await startBare("data-plane-alone-2", ports3.bare, 2);
    const all = await compare(
      ctx,
      "#3 2 workers",
      [
        { name: "nginx (2 workers)", port: ports3.nginx, process: nginx2 },
        { name: "bollard ingress --workers 2", port: ports3.bollard, process: bollard2 },
        { name: "data plane alone, 2 workers", port: ports3.bare, process: bare2 },
      ],
      backend.pid,
      RUNS,
      (t) => ({ url: `http://127.0.0.1:${t.port}/`, host: HOST, connections: 64, threads: 2, durationS: DURATION_S }),
    );
    await nginx2.stop();
    await bollard2.stop();
    await bare2.stop();
    await backend.stop();

    const [n1, b1, a1] = one as [Series, Series, Series];
    const [n2, b2] = many as [Series, Series];
    const [n3, b3, a3] = all as [Series, Series, Series];
    const perCore1 = b1.rpsPerCore / n1.rpsPerCore;
    // Per core as in #1: with wrk, the backend and other people's work on the same two CPUs, raw requests/s
    // measure how much CPU each proxy was left, not what it does with a core.
    const ratio3 = b3.rpsPerCore / n3.rpsPerCore;

    const wrk1 = wrkCommand(wrkPinned(64)({ name: "", port: ports.bollard, process: bollard }));
    const verdicts: Verdict[] = [
      {
        id: "1",
        what: "proxy throughput, 64 connections, one core each",
        target: "≥ 0.4× nginx requests/s per core; p99 reported",
        measured: `${(perCore1).toFixed(2)}× per core (${fmt(b1.rpsPerCore)} vs ${fmt(n1.rpsPerCore)} req/s per core); ${ratio(b1.rps, n1.rps)} raw (${fmt(b1.rps)} vs ${fmt(n1.rps)} req/s); p99 ${fmt(b1.p99, "ms")} vs ${fmt(n1.p99, "ms")}`,
        met: perCore1 >= TARGET_RATIO,
      },
      {
        id: "2",
        what: "1000 connections, one core each",
        target: "zero errors; p99 < 500 ms",
        measured: `${fmt(b2.errors)} errors${errorKinds(b2)}, p99 ${fmt(b2.p99, "ms")} (nginx: ${fmt(n2.errors)} errors${errorKinds(n2)}, p99 ${fmt(n2.p99, "ms")})`,
        met: b2.errors === 0 && b2.p99 < 500,
      },
      {
        id: "3",
        what: "all cores: --workers 2 vs nginx with 2 workers",
        target: "≥ 0.4× (per core, as #1)",
        measured: `${ratio3.toFixed(2)}× per core (${fmt(b3.rpsPerCore)} vs ${fmt(n3.rpsPerCore)} req/s per core); ${ratio(b3.rps, n3.rps)} raw (${fmt(b3.rps)} vs ${fmt(n3.rps)} req/s)`,
        met: ratio3 >= TARGET_RATIO,
      },
      {
        id: "9",
        what: "ingress under load #1 (one core, 64 connections)",
        target: "reported",
        measured: `CPU ${fmt(median(bollardUnderLoad.map((u) => u.cpuPercent)))} % of a core, RSS ${fmt(Math.max(...bollardUnderLoad.map((u) => u.peakRssMiB)), "MiB")}`,
        met: null,
      },
      {
        id: "12",
        what: "`bollard ingress` RSS (the command as deployed, one route)",
        target: "<= 120 MiB under the 64-connection load; idle <= 100 MiB",
        measured: `under load ${fmt(Math.max(...bollardUnderLoad.map((u) => u.peakRssMiB)), "MiB")} (peak; at 1000 connections ${fmt(many[1]?.rss ?? Number.NaN, "MiB")}); idle ${fmt(idleBefore, "MiB")} before load, ${fmt(idleAfter, "MiB")} 20 s after #1 and #2`,
        met: Math.max(...bollardUnderLoad.map((u) => u.peakRssMiB)) <= 120 && Math.max(idleBefore, idleAfter) <= 100,
      },
    ];
    const tables: Table[] = [
      seriesTable(`#1: 64 connections, each proxy pinned to CPU 1 (\`taskset -c 1\`), wrk and the backend on CPU 0; ${RUNS_ONE} runs × ${DURATION_S} s each after a ${WARMUP_S} s warm-up, interleaved:`, one, n1),
      seriesTable(`#2: the same at 1000 connections (\`wrk -c1000\`), ${RUNS} runs × ${DURATION_S} s; errors summed over the runs:`, many, n2),
      seriesTable(`#3: two workers each, no pinning (wrk -t2, backend with 2 workers; everything shares the ${one[0]?.runs[0]?.busy.length ?? 2} CPUs), ${RUNS} runs × ${DURATION_S} s:`, all, n3),
    ];
    const notes = [
      `"data plane alone" is the same native plane with the same route in a process of its own (bench/lib/dataplane-main.ts: no API server connection, informers, metrics server or status work; what the \`dataplane\` part measures), run in the same interleaved rounds: what \`bollard ingress\` adds per request is the difference between the two rows. This run: bollard ingress ${(b1.rpsPerCore / a1.rpsPerCore).toFixed(2)}× the plane alone per core at 64 connections (${fmt(b1.rpsPerCore)} vs ${fmt(a1.rpsPerCore)}), ${(b3.rpsPerCore / a3.rpsPerCore).toFixed(2)}× with 2 workers.`,
      `Per core: requests/s divided by the CPU the proxy process(es) used during the run (from /proc/<pid>/stat), the issue's "requests/s per core". This machine has ${one[0]?.runs[0]?.busy.length ?? "?"} CPUs, so wrk and the backend share CPU 0. When the proxy under test does not fill CPU 1 (nginx in #1), CPU 0 is the limit and the raw requests/s understate the proxy; per core is the fair figure, and raw is shown too. nginx is more efficient per request when saturated (bigger event batches), so its per-core figure at partial load is, if anything, low: the per-core ratio is an upper bound for Bollard.`,
      "nginx is configured to do what an ingress does per request: `proxy_http_version 1.1`, upstream `keepalive 256`, Host passed through and X-Real-IP, X-Forwarded-For/-Proto/-Host/-Port and X-Request-ID set; access log off on both sides (Bollard logs at warn). The backend is nginx (`return 200 \"ok\\n\"`), not Node, so it is never the bottleneck.",
      `Bollard ingress runs as the real command, configured by a private kube-apiserver with one IngressClass, one Ingress (${HOST} → Service backend) whose backend Service is \`type: ExternalName\`, \`externalName: localhost\` (127.0.0.1 in /etc/hosts): the API server refuses loopback IPs in EndpointSlices and FQDN slices need a dotted name. Bollard resolves the name when it opens an upstream connection, which keep-alive makes rare; the forwarding path is the same as for an EndpointSlice address.`,
    ];
    if (b2.p99 >= 500 || b2.errors > 0) {
      notes.push(
        `#2 misses: with 1000 connections on one saturated core every request queues behind the others (Little's law: 1000 connections / ${fmt(b2.rps)} req/s = ${fmt((1000 / b2.rps) * 1000, "ms")} mean), so the tail follows the throughput of #1; nginx in the same runs had p99 ${fmt(n2.p99, "ms")}, and other processes on this shared machine took ${fmt(b2.otherCpu)} % of a core meanwhile. What would close it is what closes #1.`,
      );
    }
    return {
      commands: [
        `${NGINX} -c <dir>/backend/nginx.conf -p <dir>/backend   # taskset -c 0; worker_processes 1, master_process off, return 200`,
        `taskset -c 1 ${NGINX} -c <dir>/nginx-proxy/nginx.conf -p <dir>/nginx-proxy   # worker_processes 1, upstream keepalive 256`,
        `taskset -c 1 ${bollardCommand(ingressArgs(ports.bollard, 0, 1)).replace("--https-port 0", "--https-port <free>")}`,
        wrk1,
        wrk1.replace("-c64", "-c1000"),
        `taskset -c 1 node ${bareArgs(ports.bare, 1).join(" ").replace(import.meta.dirname, "bench")}   # the data plane alone, #1 (and --workers 2 in #3)`,
        `${bollardCommand(ingressArgs(ports3.bollard, 0, 2)).replace("--https-port 0", "--https-port <free>")}   # #3, unpinned; nginx with worker_processes 2`,
        wrkCommand({ url: `http://127.0.0.1:${ports3.bollard}/`, host: HOST, connections: 64, threads: 2, durationS: DURATION_S }),
        "npm run bench -- proxy",
      ],
      tables,
      verdicts,
      notes,
      data: { one, many, all },
    };
  },
};
