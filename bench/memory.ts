// `npx node bench/memory.ts [--metallb] [--keep] [--variant "<label>" "<checkout>" "<node flags>"]...`: RSS and heap of a real
// `bollard controller` and `bollard speaker` holding 1,000 LoadBalancer Services (each with an EndpointSlice)
// and 100 Nodes in their informers, against a private kube-apiserver on loopback. Each variant runs the
// `bollard` of a checkout (with its node_modules and built addon; "." is this one) with some Node flags;
// the default is this checkout without flags. The variants run at the same time, side by side, so that the
// machine's load weighs on all alike; each has an API server of its own, so that each variant's first controller is
// the leader (it hands out the 1,000 addresses) and its second, started once they are out, is not. After 20 s of
// idling it prints each process's RSS (median; and of it, what `/proc/<pid>/smaps` says is the `node` binary's file
// pages and what is anonymous), its CPU seconds (since start, and over the idle window), the V8 heap it reports in
// its metrics (committed and used, the young generation apart) and the heap snapshot's largest shares by constructor.
// The speakers run in this network namespace but answer on no interface (`--interfaces` names none) and
// their peers' addresses are on loopback (127.77.0.x), so nothing leaves the machine. Not a test.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createKubeConfig, kubeRequest } from "@bollard/core";
import { freePort, startControlPlane } from "@bollard/lab";
import { createScope } from "./lib/scope.ts";
import { cpuSeconds, startProcess, waitUntil } from "./lib/proc.ts";

const SERVICES = 1000;
const NODES = 100;
const IDLE_MS = 20_000;
const root = join(import.meta.dirname, "..");

const variants: Array<{ label: string; bollard: string; flags: string }> = [];
const argv = process.argv.slice(2);
/** `--metallb`: MetalLB's controller and speaker (test/harness/build-metallb.sh) beside, in a control plane of their own. */
const withMetalLB = argv.includes("--metallb");
/**
 * `--keep`: once the tables are out, leave everything running (the processes' PIDs on stderr) until SIGINT, to look
 * closer; then without the heap snapshots.
 */
const keep = argv.includes("--keep");
for (let i = 0; i < argv.length; i++) {
  if (argv[i] !== "--variant") continue;
  const [label = "", checkout = ".", flags = ""] = argv.slice(i + 1, i + 4);
  variants.push({ label, bollard: join(resolve(checkout), "packages", "cli", "bin", "bollard.js"), flags });
  i += 3;
}
if (variants.length === 0) variants.push({ label: "this checkout", bollard: join(root, "packages", "cli", "bin", "bollard.js"), flags: "" });
/** The Node flags of a variant's words (NAME=value words are environment variables, e.g. MALLOC_ARENA_MAX=2). */
const nodeFlagsOf = (flags: string) => flags.split(" ").filter((w) => w !== "" && !/^[A-Z_]+=/.test(w));
// Each checkout's `bollard` starts from Node's compile cache, as the images' does: filled before anything is measured,
// with the variant's flags, because V8 keys the cache by the flags that change code (--single-threaded, --lite-mode,
// --optimize-for-size, --memory-saver-mode do; --max-semi-space-size does not). A checkout from before the cache
// has no warm-compile-cache.js, and runs as it did.
for (const { bollard, flags } of variants) {
  const warm = join(bollard, "..", "warm-compile-cache.js");
  if (existsSync(warm)) execFileSync(process.execPath, [...nodeFlagsOf(flags), warm], { stdio: "ignore" });
}

const dir = mkdtempSync(join(tmpdir(), "bollard-bench-memory-"));
const scope = createScope();
// An API server for each variant, and one for MetalLB: two leaders handing out addresses to the same Services would
// fight, and only one controller of a shared Lease would be the leader.
const cps: Array<Awaited<ReturnType<typeof startControlPlane>>> = [];
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void Promise.allSettled([scope.close(), ...cps.map((cp) => cp.stop())]).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}
try {
  for (let i = 0; i < variants.length; i++) cps.push(await startControlPlane({ dir: join(dir, `control-plane-${i}`) }));
  const metallbCp = withMetalLB ? await startControlPlane({ dir: join(dir, "control-plane-metallb") }) : undefined;
  if (metallbCp !== undefined) cps.push(metallbCp);
  const kubectlOf = (cp: (typeof cps)[number]) => (...args: string[]) => execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, ...args], { maxBuffer: 64 << 20 }).toString();
  for (const cp of cps.slice(0, variants.length)) {
    kubectlOf(cp)("apply", "--server-side", "-f", join(root, "deploy", "crds"));
    kubectlOf(cp)("wait", "--for=condition=established", "--timeout=300s", "crd", "--all");
  }
  // MetalLB's own CRDs (from its module, which build-metallb.sh downloaded) in its API server.
  const metallbBin = withMetalLB ? execFileSync("bash", [join(root, "test", "harness", "build-metallb.sh"), "--print-dir"]).toString().trim() : "";
  if (metallbCp !== undefined) {
    execFileSync("bash", [join(root, "test", "harness", "build-metallb.sh")], { stdio: "inherit" });
    const version = metallbBin.split("/").at(-1) as string;
    const moduleDir = (JSON.parse(execFileSync("go", ["mod", "download", "-json", `go.universe.tf/metallb@${version}`]).toString()) as { Dir: string }).Dir;
    const kubectlMetalLB = (...args: string[]) => execFileSync(metallbCp.binaries.kubectl, ["--kubeconfig", metallbCp.kubeconfigPath, ...args], { maxBuffer: 64 << 20 }).toString();
    kubectlMetalLB("apply", "--server-side", "-f", join(moduleDir, "config", "crd", "bases"));
    kubectlMetalLB("wait", "--for=condition=established", "--timeout=300s", "crd", "--all");
  }
  type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } } & Record<string, unknown>;
  const objects: KubeObject[] = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "metallb-system" } },
    { apiVersion: "v1", kind: "Secret", metadata: { name: "bollard-membership", namespace: "metallb-system" }, data: { secretkey: randomBytes(32).toString("base64") } },
    { apiVersion: "metallb.io/v1beta1", kind: "IPAddressPool", metadata: { name: "pool", namespace: "metallb-system" }, spec: { addresses: ["10.240.0.0/20"] } },
    // An interface no host has: neither speaker may answer on this machine's own interfaces.
    { apiVersion: "metallb.io/v1beta1", kind: "L2Advertisement", metadata: { name: "l2", namespace: "metallb-system" }, spec: { ipAddressPools: ["pool"], interfaces: ["bollard-none"] } },
  ];
  // Nodes as a kubelet registers them: conditions, capacity, node info and an image list (what most of a
  // real Node object's bytes are).
  for (let n = 0; n < NODES; n++) {
    objects.push({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: `mem-node-${n}`, labels: { "kubernetes.io/hostname": `mem-node-${n}`, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" } },
      status: {
        addresses: [
          { type: "InternalIP", address: `127.77.0.${n + 1}` },
          { type: "Hostname", address: `mem-node-${n}` },
        ],
        conditions: ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"].map((type) => ({
          type,
          status: type === "Ready" ? "True" : "False",
          reason: `Kubelet${type}`,
          message: `kubelet reports ${type}`,
          lastHeartbeatTime: "2026-01-01T00:00:00Z",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        })),
        capacity: { cpu: "16", memory: "65843200Ki", pods: "110", "ephemeral-storage": "488245288Ki" },
        allocatable: { cpu: "15800m", memory: "64716800Ki", pods: "110", "ephemeral-storage": "449964902Ki" },
        nodeInfo: {
          machineID: randomBytes(16).toString("hex"),
          systemUUID: randomBytes(16).toString("hex"),
          bootID: randomBytes(16).toString("hex"),
          kernelVersion: "6.1.0-28-amd64",
          osImage: "Debian GNU/Linux 12 (bookworm)",
          containerRuntimeVersion: "containerd://1.7.24",
          kubeletVersion: "v1.36.3",
          kubeProxyVersion: "v1.36.3",
          operatingSystem: "linux",
          architecture: "amd64",
        },
        images: Array.from({ length: 30 }, (_, i) => ({
          names: [`registry.example/team/image-${i}@sha256:${randomBytes(32).toString("hex")}`, `registry.example/team/image-${i}:v1.${i}`],
          sizeBytes: 10_000_000 + i,
        })),
      },
    });
  }
  for (let s = 0; s < SERVICES; s++) {
    const name = `svc-${s}`;
    objects.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: "default", labels: { app: name } },
      spec: { type: "LoadBalancer", selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
    });
    objects.push({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: `${name}-1`, namespace: "default", labels: { "kubernetes.io/service-name": name } },
      addressType: "IPv4",
      endpoints: [{ addresses: [`10.0.${Math.floor(s / 250)}.${s % 250}`], conditions: { ready: true }, nodeName: `mem-node-${s % NODES}` }],
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    });
  }
  // Created 16 at a time (kubectl creates one after the other, minutes for 2,100 objects on a busy machine).
  const populate = async (kubeconfigPath: string) => {
  const createdAt = Date.now();
  const kubeConfig = createKubeConfig({ kubeconfig: kubeconfigPath });
  const pathOf = (o: KubeObject) => {
    const base = o.apiVersion.includes("/") ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
    const plural = { Namespace: "namespaces", Secret: "secrets", IPAddressPool: "ipaddresspools", L2Advertisement: "l2advertisements", Node: "nodes", Service: "services", EndpointSlice: "endpointslices" }[o.kind];
    return o.metadata.namespace === undefined ? `${base}/${plural}` : `${base}/namespaces/${o.metadata.namespace}/${plural}`;
  };
  // The namespace, Secret, pool and advertisement first, in order.
  for (const o of objects.slice(0, 4)) await kubeRequest(kubeConfig, { method: "POST", path: pathOf(o), body: o });
  const queue = objects.slice(4);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let o = queue.shift(); o !== undefined; o = queue.shift()) await kubeRequest(kubeConfig, { method: "POST", path: pathOf(o), body: o });
    }),
  );
  process.stderr.write(`created ${objects.length} objects in ${Date.now() - createdAt} ms\n`);
  };
  await Promise.all(cps.map((cp) => populate(cp.kubeconfigPath)));
  if (metallbCp !== undefined) {
    // What a cluster would hold already: the memberlist Secret (the controller creates it only when it finds its
    // own Deployment to own it) and the speaker's own Pod (read at start), as in @bollard/lab's lab/metallb.ts.
    const kc = createKubeConfig({ kubeconfig: metallbCp.kubeconfigPath });
    await kubeRequest(kc, {
      method: "POST",
      path: "/api/v1/namespaces/metallb-system/secrets",
      body: { apiVersion: "v1", kind: "Secret", metadata: { name: "memberlist", namespace: "metallb-system" }, data: { secretkey: randomBytes(32).toString("base64") } },
    });
    // (No controller-manager creates the namespace's default ServiceAccount, which admission wants for a Pod.)
    await kubeRequest(kc, { method: "POST", path: "/api/v1/namespaces/metallb-system/serviceaccounts", body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } } });
    await kubeRequest(kc, {
      method: "POST",
      path: "/api/v1/namespaces/metallb-system/pods",
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "speaker-mem-node-0", namespace: "metallb-system", labels: { app: "metallb", component: "speaker" } },
        spec: { nodeName: "mem-node-0", hostNetwork: true, containers: [{ name: "speaker", image: "quay.io/metallb/speaker" }] },
      },
    });
  }

  const startBollard = async (i: number, name: string, args: string[], identity?: string) => {
    const { bollard, flags } = variants[i] as (typeof variants)[number];
    const cp = cps[i] as (typeof cps)[number];
    const words = flags.split(" ").filter((w) => /^[A-Z_]+=/.test(w));
    const env = Object.fromEntries(words.map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]));
    const snapshots = join(dir, `variant-${i}`, name);
    mkdirSync(snapshots, { recursive: true });
    const metricsPort = await freePort();
    const proc = startProcess(scope, {
      name: `${name}-${i}`,
      command: process.execPath,
      args: [
        ...nodeFlagsOf(flags),
        "--heapsnapshot-signal=SIGUSR2",
        `--diagnostic-dir=${snapshots}`,
        bollard,
        ...args,
        "--kubeconfig",
        cp.kubeconfigPath,
        "--config-namespace",
        "metallb-system",
        "--log-level",
        "warn",
        "--metrics-port",
        String(metricsPort),
      ],
      env: identity === undefined ? env : { ...env, POD_NAME: identity },
      logPath: join(dir, `${name}-${i}.log`),
    });
    return { name, proc, metricsPort, snapshots };
  };
  const started = await Promise.all(
    variants.map(async ({ label, flags }, i) => ({
      label,
      flags,
      processes: [
        await startBollard(i, "controller, the leader", ["controller"], "leader"),
        await startBollard(i, "speaker", [
          "speaker",
          // One node each: speakers of the same name would be one member to each other's membership, and contend.
          "--node-name",
          `mem-node-${i}`,
          "--memberlist-secret",
          "metallb-system/bollard-membership",
          "--bind-port",
          String(30_000 + Math.floor(Math.random() * 20_000)),
          "--interfaces",
          "bollard-none",
        ]),
      ],
    })),
  );
  // MetalLB's controller and speaker with the args of its manifest (config/manifests/metallb-native.yaml) and the
  // environment its pods get; the webhook off (nothing calls it here) and the API server's admin kubeconfig.
  const metallb: Array<{ name: string; proc: ReturnType<typeof startProcess> }> = [];
  if (metallbCp !== undefined) {
    const secretDir = join(dir, "metallb-memberlist");
    mkdirSync(secretDir);
    writeFileSync(join(secretDir, "secretkey"), randomBytes(32).toString("base64"));
    const env = { KUBECONFIG: metallbCp.kubeconfigPath, METALLB_NAMESPACE: "metallb-system" };
    metallb.push({
      name: "controller",
      proc: startProcess(scope, {
        name: "metallb-controller",
        command: join(metallbBin, "controller"),
        args: [`--port=${await freePort()}`, "--log-level=info", "--tls-min-version=VersionTLS12", "--webhook-mode=disabled", "--disable-cert-rotation"],
        env: { ...env, METALLB_ML_SECRET_NAME: "memberlist", METALLB_DEPLOYMENT: "controller" },
        logPath: join(dir, "metallb-controller.log"),
      }),
    });
    metallb.push({
      name: "speaker",
      proc: startProcess(scope, {
        name: "metallb-speaker",
        command: join(metallbBin, "speaker"),
        args: [`--port=${await freePort()}`, "--log-level=info"],
        env: {
          ...env,
          METALLB_NODE_NAME: "mem-node-0",
          METALLB_POD_NAME: "speaker-mem-node-0",
          METALLB_HOST: "127.0.0.1",
          METALLB_ML_BIND_ADDR: "127.0.0.1",
          METALLB_ML_BIND_PORT: String(await freePort()),
          METALLB_ML_LABELS: "app=metallb,component=speaker",
          METALLB_ML_SECRET_KEY_PATH: secretDir,
        },
        logPath: join(dir, "metallb-speaker.log"),
      }),
    });
  }
  const allAddressed = (kubeconfigPath: string) => async () => {
    const out = execFileSync((cps[0] as (typeof cps)[number]).binaries.kubectl, ["--kubeconfig", kubeconfigPath, "get", "svc", "-n", "default", "-o", "json"], { maxBuffer: 64 << 20 }).toString();
    const list = JSON.parse(out) as { items: Array<{ status?: { loadBalancer?: { ingress?: unknown[] } } }> };
    return list.items.filter((s) => (s.status?.loadBalancer?.ingress?.length ?? 0) > 0).length >= SERVICES;
  };
  for (const cp of cps) await waitUntil("every Service to have an address", allAddressed(cp.kubeconfigPath), 300_000, 2000);
  // The second controller of each variant, once the leader has handed out the addresses: it lists and watches the
  // same objects and waits for the Lease. Measured once it is ready (its informers have listed).
  for (const [i, variant] of started.entries()) variant.processes.push(await startBollard(i, "controller, not the leader", ["controller"], "follower"));
  for (const { processes } of started) {
    for (const { name, metricsPort } of processes) {
      await waitUntil(`${name} to be ready`, async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok, 120_000, 1000);
    }
  }
  for (const [i, cp] of cps.slice(0, variants.length).entries()) {
    const holder = (JSON.parse(kubectlOf(cp)("get", "lease", "-n", "metallb-system", "bollard-controller", "-o", "json")) as { spec: { holderIdentity?: string } }).spec.holderIdentity;
    if (holder !== "leader") throw new Error(`variant ${i}: the Lease is held by ${holder}, not by the first controller`);
  }
  const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN) / 1024;
  // RSS sampled every second while idle (one sample depends on where the collector happens to be): the
  // median is reported. Then the snapshots one by one (writing one costs memory).
  type Measured = { label: string; name: string; pid: number; metricsPort?: number; where?: string; samples: number[]; rss: number; cpu0: number; cpu1: number };
  const measured: Measured[] = started.flatMap(({ label, processes }) =>
    processes.map(({ name, proc, metricsPort, snapshots }) => ({ label, name, pid: proc.pid, metricsPort, where: snapshots, samples: [], rss: 0, cpu0: 0, cpu1: 0 })),
  );
  for (const { name, proc } of metallb) measured.push({ label: `MetalLB ${metallbBin.split("/").at(-1)}`, name, pid: proc.pid, samples: [], rss: 0, cpu0: 0, cpu1: 0 });
  for (const m of measured) m.cpu0 = await cpuSeconds([m.pid]);
  for (let t = 0; t < IDLE_MS; t += 1000) {
    for (const m of measured) m.samples.push(rss(m.pid));
    await sleep(1000);
  }
  for (const m of measured) {
    m.cpu1 = await cpuSeconds([m.pid]);
    const sorted = [...m.samples].sort((a, b) => a - b);
    m.rss = sorted[Math.floor(sorted.length / 2)] as number;
    process.stderr.write(`${m.label} ${m.name}: RSS median ${m.rss.toFixed(1)} MiB (min ${sorted[0]?.toFixed(1)}, max ${sorted.at(-1)?.toFixed(1)})\n`);
  }
  const mib = (n: number) => (n / 1048576).toFixed(1);
  const rows: string[] = [];
  const heapRows: string[] = [];
  for (const m of measured) {
    const parts = residentParts(m.pid);
    const cpu = `${m.cpu1.toFixed(1)} (${(m.cpu1 - m.cpu0).toFixed(2)})`;
    const resident = `${mib(parts.binary)} / ${mib(parts.anonymous)} (${mib(parts.malloc)}) / ${mib(parts.other)}`;
    rows.push(`| ${m.label} | ${m.name} | ${m.rss.toFixed(1)} MiB | ${resident} | ${cpu} |`);
    // (Not when kept: writing a snapshot leaves tens of MiB in malloc's arena, which would mislead a closer look.)
    if (m.where === undefined || m.metricsPort === undefined || keep) continue;
    const heap = heapSpaces(await (await fetch(`http://127.0.0.1:${m.metricsPort}/metrics`)).text());
    const where = m.where;
    process.kill(m.pid, "SIGUSR2");
    // Written when its size has stopped changing for 2 s.
    let size = -1;
    let stableSince = Date.now();
    await waitUntil(
      `${m.name}'s heap snapshot`,
      async () => {
        const file = readdirSync(where).find((f) => f.endsWith(".heapsnapshot"));
        if (file === undefined) return false;
        const now = statSync(join(where, file)).size;
        if (now !== size) {
          size = now;
          stableSince = Date.now();
        }
        return size > 0 && Date.now() - stableSince >= 2000;
      },
      180_000,
      250,
    );
    const file = join(where, readdirSync(where).find((f) => f.endsWith(".heapsnapshot")) as string);
    const summary = summarizeSnapshot(file);
    heapRows.push(
      `| ${m.label} | ${m.name} | ${mib(heap.total)} (${mib(heap.used)}) | ${mib(heap.newTotal)} | ${mib(heap.oldTotal)} (${mib(heap.oldUsed)}) | ${mib(summary.total)} | ${summary.top.map(([k, v]) => `${k} ${mib(v)}`).join("; ")} |`,
    );
    rmSync(file);
  }
  const flagRows = variants.map(({ label, flags }) => `| ${label} | ${flags || "(none)"} |`);
  process.stdout.write(
    [
      `load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} on ${availableParallelism()} CPUs`,
      "",
      "| variant | node flags and environment |",
      "|---|---|",
      ...flagRows,
      "",
      `| variant | process | RSS, median over ${IDLE_MS / 1000} s idle | of it (MiB): node binary's pages / anonymous (malloc) / other files | CPU s since start (over the ${IDLE_MS / 1000} s) |`,
      "|---|---|---|---|---|",
      ...rows,
      "",
      "| variant | process | V8 heap committed (used), MiB | new space | old space (used) | live heap (snapshot) | largest heap shares (MiB) |",
      "|---|---|---|---|---|---|---|",
      ...heapRows,
      "",
    ].join("\n"),
  );
  if (keep) {
    for (const m of measured) process.stderr.write(`${m.label} ${m.name}: pid ${m.pid}\n`);
    process.stderr.write(`kept running until SIGINT (pid ${process.pid})\n`);
    await new Promise(() => {});
  }
} finally {
  await scope.close();
  for (const cp of cps) await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Where a process's resident pages are, from `/proc/<pid>/smaps`: file pages of the executable (for `node`, its
 * code, built-ins and ICU data: shared with every process running the same file, and reclaimable), anonymous memory
 * (the V8 heap, malloc's `[heap]` and arenas, thread stacks) and the other files (the C libraries, the addon).
 */
function residentParts(pid: number): { binary: number; anonymous: number; malloc: number; other: number } {
  const exe = realpathSync(`/proc/${pid}/exe`);
  const parts = { binary: 0, anonymous: 0, malloc: 0, other: 0 };
  let path = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (mapping !== null) {
      path = mapping[1] ?? "";
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (field === null) continue;
    const bytes = Number(field[2]) * 1024;
    if (field[1] === "Anonymous") {
      parts.anonymous += bytes;
      if (path === "[heap]") parts.malloc += bytes;
    } else if (path === exe) parts.binary += bytes;
    else if (path.startsWith("/")) parts.other += bytes;
  }
  // A private file mapping's written pages are anonymous (counted there), not the file's.
  return parts;
}

/** The V8 heap as the process's `nodejs_heap_space_size_*` metrics give it, in bytes. */
function heapSpaces(text: string): { total: number; used: number; newTotal: number; oldTotal: number; oldUsed: number } {
  const value = (metric: string, space?: string) => {
    let sum = 0;
    for (const match of text.matchAll(new RegExp(`^${metric}\\{space="([a-z_]+)"\\} (\\S+)$`, "gm"))) {
      if (space === undefined || match[1] === space) sum += Number(match[2]);
    }
    return sum;
  };
  return {
    total: value("nodejs_heap_space_size_total_bytes"),
    used: value("nodejs_heap_space_size_used_bytes"),
    newTotal: value("nodejs_heap_space_size_total_bytes", "new"),
    oldTotal: value("nodejs_heap_space_size_total_bytes", "old"),
    oldUsed: value("nodejs_heap_space_size_used_bytes", "old"),
  };
}

/** Self sizes in a V8 heap snapshot, by node type and constructor (or string/code kind). */
function summarizeSnapshot(path: string): { total: number; top: Array<[string, number]> } {
  const snapshot = JSON.parse(readFileSync(path, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const types = snapshot.snapshot.meta.node_types[0];
  const byKey = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt] as number] as string;
    const size = snapshot.nodes[i + sizeAt] as number;
    total += size;
    const key = type === "object" || type === "closure" ? `${type}:${snapshot.strings[snapshot.nodes[i + nameAt] as number]}` : type;
    byKey.set(key, (byKey.get(key) ?? 0) + size);
  }
  return { total, top: [...byKey].sort((a, b) => b[1] - a[1]).slice(0, 8) };
}
