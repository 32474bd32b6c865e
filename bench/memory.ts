// `npx node bench/memory.ts [--variant "<label>" "<checkout>" "<node flags>"]...`: RSS and heap of a real
// `bollard controller` and `bollard speaker` holding 1,000 LoadBalancer Services (each with an EndpointSlice)
// and 100 Nodes in their informers, against a private kube-apiserver on loopback. Each variant runs the
// `bollard` of a checkout (with its node_modules and built addon; "." is this one) with some Node flags;
// the default is this checkout without flags. The variants run at the same time, side by side, so that the
// machine's load weighs on all alike. After the controller has handed out every address and 20 s of idling, it prints each
// process's RSS and V8 heap, and the heap snapshot's largest shares by constructor.
// The speakers run in this network namespace but answer on no interface (`--interfaces` names none) and
// their peers' addresses are on loopback (127.77.0.x), so nothing leaves the machine. Not a test.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createKubeConfig, kubeRequest } from "@bollard/core";
import { freePort, startControlPlane } from "@bollard/lab";
import { createScope } from "./lib/scope.ts";
import { startProcess, waitUntil } from "./lib/proc.ts";

const SERVICES = 1000;
const NODES = 100;
const IDLE_MS = 20_000;
const root = join(import.meta.dirname, "..");

const variants: Array<{ label: string; bollard: string; flags: string }> = [];
const argv = process.argv.slice(2);
/** `--metallb`: MetalLB's controller and speaker (test/harness/build-metallb.sh) beside, in a control plane of their own. */
const withMetalLB = argv.includes("--metallb");
for (let i = 0; i < argv.length; i++) {
  if (argv[i] !== "--variant") continue;
  const [label = "", checkout = ".", flags = ""] = argv.slice(i + 1, i + 4);
  variants.push({ label, bollard: join(resolve(checkout), "packages", "cli", "bin", "bollard.js"), flags });
  i += 3;
}
if (variants.length === 0) variants.push({ label: "this checkout", bollard: join(root, "packages", "cli", "bin", "bollard.js"), flags: "" });
// Each checkout's `bollard` starts from Node's compile cache, as the images' does: filled before anything is measured
// (a checkout from before the cache has no warm-compile-cache.js, and runs as it did).
for (const { bollard } of new Set(variants)) {
  const warm = join(bollard, "..", "warm-compile-cache.js");
  if (existsSync(warm)) execFileSync(process.execPath, [warm], { stdio: "ignore" });
}

const dir = mkdtempSync(join(tmpdir(), "bollard-bench-memory-"));
const scope = createScope();
const cp = await startControlPlane({ dir: join(dir, "control-plane") });
// MetalLB gets an API server of its own: two controllers handing out addresses to the same Services would fight.
const metallbCp = withMetalLB ? await startControlPlane({ dir: join(dir, "control-plane-metallb") }) : undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void Promise.allSettled([scope.close(), cp.stop(), metallbCp?.stop()]).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}
try {
  const kubectl = (...args: string[]) => execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, ...args], { maxBuffer: 64 << 20 }).toString();
  kubectl("apply", "--server-side", "-f", join(root, "deploy", "crds"));
  kubectl("wait", "--for=condition=established", "--timeout=300s", "crd", "--all");
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
  await populate(cp.kubeconfigPath);
  if (metallbCp !== undefined) {
    await populate(metallbCp.kubeconfigPath);
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

  const started = variants.map(({ label, bollard, flags }, i) => {
    // NAME=value words are environment variables (MALLOC_ARENA_MAX=2), the others Node flags.
    const words = flags.split(" ").filter((f) => f !== "");
    const env = Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]));
    const nodeFlags = [...words.filter((w) => !/^[A-Z_]+=/.test(w)), `--heapsnapshot-signal=SIGUSR2`];
    const common = ["--kubeconfig", cp.kubeconfigPath, "--config-namespace", "metallb-system", "--log-level", "warn", "--metrics-port", "0"];
    const snapshots = join(dir, `variant-${i}`);
    execFileSync("mkdir", ["-p", join(snapshots, "controller"), join(snapshots, "speaker")]);
    const controller = startProcess(scope, {
      name: `controller-${i}`,
      command: process.execPath,
      args: [...nodeFlags, `--diagnostic-dir=${join(snapshots, "controller")}`, bollard, "controller", ...common],
      env,
      logPath: join(dir, `controller-${i}.log`),
    });
    const speaker = startProcess(scope, {
      name: `speaker-${i}`,
      command: process.execPath,
      args: [
        ...nodeFlags,
        `--diagnostic-dir=${join(snapshots, "speaker")}`,
        bollard,
        "speaker",
        ...common,
        "--node-name",
        // One node each: speakers of the same name would be one member to each other's membership, and contend.
        `mem-node-${i}`,
        "--memberlist-secret",
        "metallb-system/bollard-membership",
        "--bind-port",
        String(30_000 + Math.floor(Math.random() * 20_000)),
        "--interfaces",
        "bollard-none",
      ],
      logPath: join(dir, `speaker-${i}.log`),
      env,
    });
    return { label, flags, controller, speaker, snapshots };
  });
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
    const out = execFileSync(cp.binaries.kubectl, ["--kubeconfig", kubeconfigPath, "get", "svc", "-n", "default", "-o", "json"], { maxBuffer: 64 << 20 }).toString();
    const list = JSON.parse(out) as { items: Array<{ status?: { loadBalancer?: { ingress?: unknown[] } } }> };
    return list.items.filter((s) => (s.status?.loadBalancer?.ingress?.length ?? 0) > 0).length >= SERVICES;
  };
  await waitUntil("every Service to have an address", allAddressed(cp.kubeconfigPath), 300_000, 2000);
  if (metallbCp !== undefined) await waitUntil("every Service to have an address from MetalLB", allAddressed(metallbCp.kubeconfigPath), 300_000, 2000);
  const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN) / 1024;
  // RSS sampled every second while idle (one sample depends on where the collector happens to be): the
  // median is reported. Then the snapshots one by one (writing one costs memory).
  const measured = started.flatMap(({ label, flags, controller, speaker, snapshots }) =>
    (
      [
        ["controller", controller],
        ["speaker", speaker],
      ] as const
    ).map(([name, proc]) => ({ label, flags, name: name as string, pid: proc.pid, samples: [] as number[], rss: 0, where: join(snapshots, name) as string | undefined })),
  );
  for (const { name, proc } of metallb) measured.push({ label: `MetalLB ${metallbBin.split("/").at(-1)}`, flags: "", name, pid: proc.pid, samples: [], rss: 0, where: undefined });
  for (let t = 0; t < IDLE_MS; t += 1000) {
    for (const m of measured) m.samples.push(rss(m.pid));
    await sleep(1000);
  }
  for (const m of measured) {
    const sorted = [...m.samples].sort((a, b) => a - b);
    m.rss = sorted[Math.floor(sorted.length / 2)] as number;
    process.stderr.write(`${m.label} ${m.flags} ${m.name}: RSS median ${m.rss.toFixed(1)} MiB (min ${sorted[0]?.toFixed(1)}, max ${sorted.at(-1)?.toFixed(1)})\n`);
  }
  const rows: string[] = [];
  for (const { label, flags, name, pid, rss: before, where } of measured) {
    if (where === undefined) {
      rows.push(`| ${label} | – | ${name} | ${before.toFixed(1)} MiB | (Go: no V8 heap) | |`);
      continue;
    }
    process.kill(pid, "SIGUSR2");
    // Written when its size has stopped changing for 2 s.
    let size = -1;
    let stableSince = Date.now();
    await waitUntil(
      `${name}'s heap snapshot`,
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
    rows.push(`| ${label} | ${flags || "(none)"} | ${name} | ${before.toFixed(1)} MiB | ${(summary.total / 1048576).toFixed(1)} MiB | ${summary.top.map(([k, v]) => `${k} ${(v / 1048576).toFixed(1)}`).join("; ")} |`);
    rmSync(file);
  }
  process.stdout.write(`| variant | node flags | process | RSS, median over ${IDLE_MS / 1000} s idle | heap (snapshot) | largest heap shares (MiB) |\n|---|---|---|---|---|---|\n${rows.join("\n")}\n`);
} finally {
  await scope.close();
  await cp.stop();
  await metallbCp?.stop();
  rmSync(dir, { recursive: true, force: true });
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
