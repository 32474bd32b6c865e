// Does offering HTTP/2 cost HTTP/1.1 throughput? Serves HTTPS from node:https (the proxy's listener before HTTP/2)
// and from node:http2's createSecureServer({ allowHTTP1: true }) (ALPN h2 with HTTP/1.1 fallback, its listener
// now), with the same
// request handler — the proxy's own, routing to one backend on loopback — and the same certificate. wrk drives
// HTTP/1.1 keep-alive load over TLS (it offers no ALPN, so both listeners speak HTTP/1.1); the two listeners take
// turns (ABBA order), `--runs` times each. Reported per listener: requests/s, and the listener process's CPU time
// per request — the steadier figure on a shared, busy machine. Loopback only; bounded by runs × 2 × duration.
// Not a test: it asserts nothing.
//
//   npx node packages/ingress/test/measure/http1-on-h2-listener.ts [--runs 3] [--duration 8] [--connections 32]
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createSecureServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { compileRoutes, createProxy, generateDefaultCertificate } from "../../src/index.ts";

const role = process.argv[2];

if (role === "backend") {
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" }).end("hello from the backend\n");
  });
  server.listen(0, "127.0.0.1", () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
} else if (role === "listeners") {
  const backendPort = Number(process.argv[3]);
  const certificate = generateDefaultCertificate();
  const proxy = createProxy({ defaultCertificate: certificate });
  proxy.setTable(
    compileRoutes({
      ingresses: [{ metadata: { name: "bench", namespace: "default" }, spec: { ingressClassName: "bollard", rules: [{ host: "bench.test", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "b", port: { number: 80 } } } }] } }] } }],
      ingressClasses: [{ metadata: { name: "bollard" }, spec: { controller: "bollard.dev/ingress-controller" } }],
      services: [{ metadata: { name: "b", namespace: "default" }, spec: { ports: [{ name: "http", port: 80 }] } }],
      endpointSlices: [{ metadata: { name: "b-1", namespace: "default", labels: { "kubernetes.io/service-name": "b" } }, ports: [{ name: "http", port: backendPort }], endpoints: [{ addresses: ["127.0.0.1"] }] }],
      secrets: [],
    }),
  );
  // The proxy's HTTPS request handler, as it is attached to its node:https listener.
  const handler = proxy.https.listeners("request")[0] as Parameters<typeof createHttpsServer>[1];
  const tls = { cert: certificate.cert, key: certificate.key };
  // node:https turns Nagle off by default and node:http2 does not; a proxy would turn it off on both.
  const listeners = { https: createHttpsServer(tls, handler), http2: createSecureServer({ ...tls, allowHTTP1: true, noDelay: true }, handler as never) };
  const ports: Record<string, number> = {};
  for (const [name, server] of Object.entries(listeners)) {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    ports[name] = (server.address() as AddressInfo).port;
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  process.on("message", () => process.send?.(process.cpuUsage()));
} else {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, duration: { type: "string", default: "8" }, connections: { type: "string", default: "32" } } });
  const children: ChildProcess[] = [];
  const start = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [import.meta.filename, ...args], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
      children.push(child);
      child.once("exit", (code) => reject(new Error(`${args[0]} exited with ${code}`)));
      child.stdout?.once("data", (c: Buffer) => resolve(c.toString().trim()));
    });
  const wrk = (port: number) =>
    new Promise<{ rps: number; requests: number }>((resolve, reject) => {
      // A long --timeout: a machine busy with other work stalls now and then; that is noise, not a failure.
      const args = ["-t1", `-c${values.connections}`, `-d${values.duration}s`, "--timeout", "30s", "-H", "Host: bench.test", `https://127.0.0.1:${port}/`];
      execFile("wrk", args, (err, stdout) => {
        if (err) return reject(err);
        const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1];
        const requests = /(\d+) requests in/.exec(stdout)?.[1];
        const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(stdout);
        if (rps === undefined || requests === undefined || errors !== null) return reject(new Error(`wrk: ${stdout}`));
        resolve({ rps: Number(rps), requests: Number(requests) });
      });
    });
  try {
    const backendPort = await start(["backend"]);
    const ports = JSON.parse(await start(["listeners", backendPort])) as { https: number; http2: number };
    const listeners = children[1] as ChildProcess;
    const cpuMicros = () =>
      new Promise<number>((resolve) => {
        listeners.once("message", (u: NodeJS.CpuUsage) => resolve(u.user + u.system));
        listeners.send("cpu");
      });
    const measure = async (port: number) => {
      const before = await cpuMicros();
      const { rps, requests } = await wrk(port);
      return { rps, cpuPerRequest: ((await cpuMicros()) - before) / requests };
    };
    // One warm-up each (JIT, TLS session setup), not counted.
    for (const port of [ports.https, ports.http2]) await measure(port);
    const results: Record<"https" | "http2", { rps: number; cpuPerRequest: number }[]> = { https: [], http2: [] };
    for (let run = 0; run < Number(values.runs); run++) {
      const order = run % 2 === 0 ? (["https", "http2"] as const) : (["http2", "https"] as const);
      for (const name of order) {
        const r = await measure(ports[name]);
        results[name].push(r);
        console.log(`run ${run + 1} ${name.padEnd(5)} ${r.rps.toFixed(0)} req/s, ${r.cpuPerRequest.toFixed(1)} µs CPU/request`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const pct = (ratio: number) => `${((ratio - 1) * 100).toFixed(1)}%`;
    const line = (what: string, pick: (r: { rps: number; cpuPerRequest: number }) => number, unit: string) => {
      const a = results.https.map(pick);
      const b = results.http2.map(pick);
      // Each run pairs the two listeners back to back, so slow drift of the machine's other load cancels out.
      const paired = a.map((x, i) => (b[i] as number) / x);
      console.log(
        `${what}: median node:https ${median(a).toFixed(1)}, node:http2 allowHTTP1 ${median(b).toFixed(1)} ${unit}; ` +
          `http2/https per run ${paired.map(pct).join(" ")} (median ${pct(median(paired))}); spread between runs https ${spread(a)}, http2 ${spread(b)}`,
      );
    };
    line("throughput", (r) => r.rps, "req/s");
    line("listener CPU", (r) => r.cpuPerRequest, "µs/request");
  } finally {
    for (const c of children) c.kill("SIGTERM");
  }
}

function spread(xs: number[]): string {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return `${(((hi - lo) / lo) * 100).toFixed(1)}%`;
}
