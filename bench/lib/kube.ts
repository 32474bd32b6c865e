// A small API client for load: keep-alive HTTPS with the admin client certificate of a kubeconfig, parallel
// creates, and a watch that stamps each event with the time it arrived. Benchmarks need many requests in
// flight and their timing, which the components' own client does not expose.
import { readFile } from "node:fs/promises";
import { Agent, request } from "node:https";
import YAML from "yaml";

export interface Kube {
  server: string;
  call<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; body: T }>;
  /** GET of a non-JSON resource, e.g. /metrics */
  text(path: string): Promise<string>;
  /** POSTs every object (to `pathOf(object)`) with `concurrency` in flight; returns when each was acknowledged. */
  createAll(objects: readonly unknown[], pathOf: (o: unknown) => string, concurrency: number): Promise<{ sentAt: number; createdAt: number }[]>;
  /** Streams watch events until `signal` aborts; `onEvent` gets the arrival time (performance.now()). */
  watch(path: string, onEvent: (type: string, object: Record<string, unknown>, at: number) => void, signal: AbortSignal): Promise<void>;
  close(): void;
}

interface KubeconfigFile {
  clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
  users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
}

export async function openKube(kubeconfigPath: string, maxSockets = 64): Promise<Kube> {
  const file = YAML.parse(await readFile(kubeconfigPath, "utf8")) as KubeconfigFile;
  const cluster = file.clusters[0]?.cluster;
  const user = file.users[0]?.user;
  if (cluster === undefined || user === undefined) throw new Error(`${kubeconfigPath}: no cluster or user`);
  const b64 = (s: string) => Buffer.from(s, "base64");
  const agent = new Agent({
    keepAlive: true,
    maxSockets,
    ca: b64(cluster["certificate-authority-data"]),
    cert: b64(user["client-certificate-data"]),
    key: b64(user["client-key-data"]),
  });
  const base = new URL(cluster.server);

  const call = <T>(method: string, path: string, body?: unknown, contentType = "application/json", raw = false) =>
    new Promise<{ status: number; body: T }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          agent,
          host: base.hostname,
          port: base.port,
          method,
          path,
          headers: payload === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": contentType, "content-length": Buffer.byteLength(payload) },
          timeout: 60_000,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            text += c;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: (raw ? text : text === "" ? undefined : JSON.parse(text)) as T }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on("error", reject);
      req.end(payload);
    });

  return {
    server: cluster.server,
    call,
    async text(path) {
      const res = await call<string>("GET", path, undefined, undefined, true);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
      return res.body;
    },
    async createAll(objects, pathOf, concurrency) {
      const times: { sentAt: number; createdAt: number }[] = new Array(objects.length);
      let next = 0;
      const worker = async () => {
        while (next < objects.length) {
          const i = next++;
          const object = objects[i];
          for (let attempt = 0; ; attempt++) {
            const sentAt = performance.now();
            const res = await call<{ message?: string }>("POST", pathOf(object), object);
            if (res.status === 201) {
              times[i] = { sentAt, createdAt: performance.now() };
              break;
            }
            // 429/5xx under load: back off and retry; anything else is a broken benchmark
            if ((res.status !== 429 && res.status < 500) || attempt >= 20) {
              throw new Error(`POST ${pathOf(object)}: ${res.status} ${res.body?.message ?? ""}`);
            }
            await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, objects.length) }, worker));
      return times;
    },
    watch(path, onEvent, signal) {
      return new Promise((resolve, reject) => {
        const req = request({ agent: false, ca: agent.options.ca, cert: agent.options.cert, key: agent.options.key, host: base.hostname, port: base.port, path, signal }, (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`watch ${path}: ${res.statusCode}`));
            res.resume();
            return;
          }
          let buffered = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            const at = performance.now();
            buffered += chunk;
            let nl = buffered.indexOf("\n");
            while (nl >= 0) {
              const line = buffered.slice(0, nl);
              buffered = buffered.slice(nl + 1);
              if (line.trim() !== "") {
                const event = JSON.parse(line) as { type: string; object: Record<string, unknown> };
                onEvent(event.type, event.object, at);
              }
              nl = buffered.indexOf("\n");
            }
          });
          res.on("end", () => resolve());
          res.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
        });
        req.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
        req.end();
      });
    },
    close: () => agent.destroy(),
  };
}

/** Sum and count of apiserver_request_duration_seconds for the requests matching all `labels`. */
export function requestDurations(metrics: string, labels: Record<string, string>): { count: number; sumS: number } {
  let count = 0;
  let sumS = 0;
  for (const line of metrics.split("\n")) {
    const m = /^apiserver_request_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const have = Object.fromEntries([...(m[2] as string).matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (!Object.entries(labels).every(([k, v]) => have[k] === v)) continue;
    if (m[1] === "sum") sumS += Number(m[3]);
    else count += Number(m[3]);
  }
  return { count, sumS };
}
