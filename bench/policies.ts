// Issue 14: what ingress-nginx annotations cost per request. The native data plane with no policy and with five
// (source allow-list, rate limit, CORS, regex rewrite, a custom response header) beside nginx without and with the
// same five, one core each (the proxy pinned to CPU 1; wrk and the backend on CPU 0), runs interleaved.
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@bollard/lab";
import { compileCacheDir } from "../packages/cli/bin/compile-cache.js";
import { compare, type Series, type Target, table, wrkLoad } from "./dataplane.ts";
import { backendHttp, canConnect, NGINX, policyHttp, proxyHttp, startNginx } from "./lib/nginx.ts";
import type { Part, PartOutput } from "./lib/part.ts";
import { BENCH_POLICY_ANNOTATIONS } from "./lib/policies.ts";
import { startProcess, waitUntil } from "./lib/proc.ts";
import { fmt } from "./lib/stats.ts";
import { wrkCommand } from "./lib/wrk.ts";

const RUNS = Number(process.env.BENCH_POLICIES_RUNS ?? 3);
const DURATION_S = Number(process.env.BENCH_DATAPLANE_SECONDS ?? 10);
const HOST = "bench.local";
const NOFILE = 20_000;
const cacheDir = compileCacheDir(process.env);
const cacheEnv: Record<string, string> = cacheDir === undefined ? {} : { NODE_COMPILE_CACHE: cacheDir };
const mainScript = join(import.meta.dirname, "lib", "dataplane-main.ts");

export const part: Part = {
  name: "policies",
  title: "ingress-nginx annotations: the cost of five policies, beside nginx (issue 14)",
  async run(ctx): Promise<PartOutput> {
    spawnSync(process.execPath, [mainScript], { env: { ...process.env, ...cacheEnv }, stdio: "ignore" });
    const backendPort = await freePort();
    await startNginx(ctx.scope, { name: "backend", dir: ctx.dir, workers: 1, cpus: "0", http: backendHttp(backendPort), port: backendPort });
    const native = async (name: string, policies: boolean): Promise<Target> => {
      const http = await freePort();
      const args = [`--nofile=${NOFILE}`, process.execPath, mainScript, "native", String(http), String(backendPort), "--workers", "1", ...(policies ? ["--policies"] : [])];
      const proc = startProcess(ctx.scope, { name, command: "prlimit", args, env: cacheEnv, logPath: join(ctx.dir, `${name.replace(/\W+/g, "-")}.log`), cpus: "1" });
      await waitUntil(`${name} listening on ${http}`, () => canConnect(http), 30_000);
      return { name, process: proc, http, https: 0 };
    };
    const nginx = async (name: string, policies: boolean): Promise<Target> => {
      const http = await freePort();
      const prefix = name.replace(/\W+/g, "-");
      const proc = await startNginx(ctx.scope, { name: prefix, dir: ctx.dir, workers: 1, cpus: "1", http: policies ? policyHttp(http, backendPort) : proxyHttp(http, backendPort), port: http });
      return { name, process: proc, http, https: 0 };
    };
    // The request a browser app makes: an Origin the CORS policy allows.
    const load = wrkLoad((t) => ({ url: `http://127.0.0.1:${t.http}/api/items?page=2`, host: HOST, connections: 64, threads: 1, cpus: "0", nofile: NOFILE, headers: ["Origin: https://app.bench.local"] }));
    const targets = [await nginx("nginx, no policy", false), await native("native, no policy", false), await nginx("nginx, 5 policies", true), await native("native, 5 policies", true)];
    await sleep(1000);
    // a check that each target does what it is measured doing: 200, and the policies' headers where they are on
    for (const t of targets) {
      const r = spawnSync("curl", ["-s", "-o", "/dev/null", "-D", "-", "-H", `Host: ${HOST}`, "-H", "Origin: https://app.bench.local", `http://127.0.0.1:${t.http}/api/items`], { encoding: "utf8" });
      ctx.log(`${t.name}: ${r.stdout.split("\r\n").filter((l) => /^(HTTP|access-control-allow-origin|x-bench)/i.test(l)).join(" | ")}`);
    }
    const series = await compare(ctx, "64 connections", targets, RUNS, load);
    const [nNone, dNone, nPol, dPol] = series as [Series, Series, Series, Series];
    const cost = (none: Series, pol: Series) => `${fmt(100 * (1 - pol.perCore / none.perCore))} %`;
    return {
      commands: [
        `taskset -c 0 ${NGINX} -c <dir>/backend/nginx.conf   # return 200 "ok"`,
        `taskset -c 1 ${NGINX} -c <dir>/nginx-5-policies/nginx.conf   # allow/deny, limit_req, CORS add_header, regex location + rewrite, add_header (bench/lib/policies.ts)`,
        `taskset -c 1 prlimit --nofile=${NOFILE} node bench/lib/dataplane-main.ts native <port> <backend-port> --workers 1 --policies   # the Ingress carries: ${Object.entries(BENCH_POLICY_ANNOTATIONS)
          .map(([k, v]) => `${k.replace(/^.*\//, "")}=${v}`)
          .join(", ")}`,
        wrkCommand({ url: "http://127.0.0.1:<port>/api/items?page=2", host: HOST, connections: 64, threads: 1, cpus: "0", nofile: NOFILE, headers: ["Origin: https://app.bench.local"], durationS: DURATION_S }),
        "npm run bench -- policies",
      ],
      tables: [table(`64 connections (\`wrk -t1 -c64\`, an allowed Origin on every request), each proxy pinned to CPU 1; ${RUNS} interleaved runs × ${DURATION_S} s; "vs nginx" is against nginx without policies:`, series, "percentiles")],
      verdicts: [
        {
          id: "14",
          what: "requests/s per core with 5 policies on the route vs none, beside nginx doing the same",
          target: "measured, side by side",
          measured: `native: ${fmt(dPol.perCore)} vs ${fmt(dNone.perCore)} per core (policies cost ${cost(dNone, dPol)}); nginx: ${fmt(nPol.perCore)} vs ${fmt(nNone.perCore)} (cost ${cost(nNone, nPol)}); with policies native/nginx ${(dPol.perCore / nPol.perCore).toFixed(2)}x per core`,
          met: null,
        },
      ],
      notes: [
        "The five policies: a source allow-list (the client, 127.0.0.1, is allowed), a per-client rate limit set high enough never to refuse, CORS for one origin (the request carries it, so the Access-Control-* headers are added), a case-insensitive regex path with rewrite-target /$1, and a response header from a ConfigMap (custom-headers). nginx does the same with allow/deny, limit_req (burst large, nodelay), add_header and a rewrite in a regex location; ingress-nginx would add its Lua balancer and more variables on top, so this nginx is a lower bound of ingress-nginx's cost.",
      ],
      data: { series },
    };
  },
};
