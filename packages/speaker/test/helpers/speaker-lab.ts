// A lab for whole-speaker tests: the lab network (bridge + node1 + node2 + client), a private
// kube-apiserver listening on the lab bridge, the CRDs, a memberlist Secret, Node objects, a pool, an
// L2Advertisement and one LoadBalancer Service `default/web` with a ready endpoint, and real
// `bollard speaker` processes run as nobody with only CAP_NET_RAW. It also gives the test what the
// outside world can see: gratuitous ARP on the client's wire, every ServiceL2Status ever created,
// Events, and each speaker's /metrics.
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createInformer, createKubeConfig, createLogger, type Informer, kubeRequest, resourcePath, resources, typedResource } from "@bollard/core";
import { type ControlPlane, createLabNetwork, destroyLabNetwork, type LabHost, type LabNetwork, startControlPlane } from "@bollard/lab";
import type { ServiceL2Status } from "../../src/shell/l2-status.ts";
import { lineReader, NET_RAW_ONLY, spawnInNetns, stopProcess } from "./netns.ts";

const root = join(import.meta.dirname, "..", "..", "..", "..");
const bollard = join(root, "packages", "cli", "bin", "bollard.ts");
const garpCapture = join(import.meta.dirname, "garp-capture.ts");
export const NS = "metallb-system";
/** Each speaker has its own namespace, so all use the default port; the test reads it over the lab bridge. */
const METRICS_PORT = 7472;
const STATUSES = resourcePath(resources.serviceL2Statuses, { namespace: NS });

export interface GarpSeen {
  mac: string;
  ip: string;
  at: number;
}

export interface SpeakerLab {
  net: LabNetwork;
  cp: ControlPlane;
  vip4: string;
  vip6: string;
  /** The node the election picks for the Service, worked out here independently. */
  winner: LabHost;
  other: LabHost;
  api<T>(method: "GET" | "POST" | "PATCH" | "DELETE", path: string, body?: unknown): Promise<T>;
  /** Starts `bollard speaker` on these hosts, all spawned in the same tick. */
  startSpeakers(hosts: LabHost[], extraArgs?: string[]): void;
  stopSpeaker(host: LabHost, signal?: NodeJS.Signals): Promise<void>;
  /** Sends a signal to a running speaker; SIGUSR2 blocks its event loop for 2 s (the stall test hook). */
  signalSpeaker(host: LabHost, signal: NodeJS.Signals): void;
  /** Sum of a metric's samples on a host's speaker, over samples whose labels include `labels`. */
  metric(host: LabHost, name: string, labels?: Record<string, string>): Promise<number>;
  /** Gratuitous ARP the client's interface has seen since the lab started. */
  garps(): readonly GarpSeen[];
  /** The node label of every ServiceL2Status created since the lab started, in order. */
  l2StatusCreators(): readonly string[];
  l2Statuses(): Promise<ServiceL2Status[]>;
  /** The speaker's log lines (JSON) on a host, across its restarts, for assertion messages. */
  logs(host: LabHost, message?: string): Array<Record<string, unknown>>;
  /** nodeAssigned Events on default/web, by the node their note names. */
  nodeAssignedEvents(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

export async function startSpeakerLab(): Promise<SpeakerLab> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
  };
  try {
    const net = await createLabNetwork({ nodes: 2 });
    cleanups.push(() => destroyLabNetwork(net.id, 2));
    const dir = mkdtempSync(join(tmpdir(), "bollard-speaker-test-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cp = await startControlPlane({ bindAddress: net.hostIPv4, dir: join(dir, "control-plane") });
    cleanups.push(() => cp.stop());
    // The speakers run as nobody: they get a copy of the kubeconfig they can read.
    const nodeKubeconfig = join(dir, "kubeconfig-nodes");
    copyFileSync(cp.kubeconfigPath, nodeKubeconfig);
    chmodSync(dir, 0o755);
    chmodSync(nodeKubeconfig, 0o644);
    execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, "apply", "--server-side", "-f", join(root, "deploy", "crds")]);
    execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, "wait", "--for=condition=established", "--timeout=60s", "crd", "--all"]);

    const kubeConfig = createKubeConfig({ kubeconfig: cp.kubeconfigPath });
    const api = <T>(method: "GET" | "POST" | "PATCH" | "DELETE", path: string, body?: unknown) =>
      kubeRequest<T>(kubeConfig, {
        method,
        path,
        ...(body === undefined ? {} : { body }),
        ...(method === "PATCH" ? { contentType: "application/merge-patch+json" } : {}),
      });

    const vip4 = `${net.prefixV4}.200`;
    const vip6 = `${net.prefixV6}200`;
    await api("POST", "/api/v1/namespaces", { metadata: { name: NS } });
    await api("POST", `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: "memberlist" }, data: { secretkey: randomBytes(32).toString("base64") } });
    for (const host of net.nodes) {
      await api("POST", "/api/v1/nodes", { metadata: { name: host.name, labels: { "kubernetes.io/hostname": host.name } } });
      await api("PATCH", `/api/v1/nodes/${host.name}/status`, { status: { addresses: [{ type: "InternalIP", address: host.ipv4 }] } });
    }
    await api("POST", `/apis/metallb.io/v1beta1/namespaces/${NS}/ipaddresspools`, {
      apiVersion: "metallb.io/v1beta1",
      kind: "IPAddressPool",
      metadata: { name: "lab" },
      spec: { addresses: [net.poolRangeV4, net.poolRangeV6] },
    });
    await api("POST", `/apis/metallb.io/v1beta1/namespaces/${NS}/l2advertisements`, { apiVersion: "metallb.io/v1beta1", kind: "L2Advertisement", metadata: { name: "lab" } });
    await api("POST", "/api/v1/namespaces/default/services", { metadata: { name: "web" }, spec: { type: "LoadBalancer", ports: [{ port: 80, targetPort: 8080 }] } });
    await api("PATCH", "/api/v1/namespaces/default/services/web/status", { status: { loadBalancer: { ingress: [{ ip: vip4 }, { ip: vip6 }] } } });
    await api("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
      metadata: { name: "web-1", labels: { "kubernetes.io/service-name": "web" } },
      addressType: "IPv4",
      endpoints: [{ addresses: [(net.nodes[0] as LabHost).ipv4], conditions: { ready: true }, nodeName: "node1" }],
      ports: [{ port: 8080 }],
    });

    // The election, worked out here independently: the lowest sha256(node + "#" + first ingress IP).
    const hash = (host: LabHost) => createHash("sha256").update(`${host.name}#${vip4}`).digest();
    const [winner, other] = [...net.nodes].sort((a, b) => Buffer.compare(hash(a), hash(b))) as [LabHost, LabHost];

    // Every ServiceL2Status ever created, from a watch opened before any speaker runs.
    const watching = new AbortController();
    cleanups.push(() => watching.abort());
    const creators: string[] = [];
    const statuses: Informer<ServiceL2Status> = createInformer({
      kubeConfig,
      resource: typedResource<ServiceL2Status>(resources.serviceL2Statuses),
      namespace: NS,
      logger: createLogger({ name: "speaker-lab", level: "silent" }),
      signal: watching.signal,
    });
    cleanups.push(() => statuses.stop());
    statuses.onChange((event) => {
      if (event.type === "ADDED" && event.object !== undefined) creators.push(event.object.metadata.labels?.["metallb.io/node"] ?? "?");
    });
    await statuses.synced;

    const seen: GarpSeen[] = [];
    const capture = spawnInNetns(net.client.netns, [process.execPath, garpCapture, net.client.ifname]);
    cleanups.push(() => stopProcess(capture));
    const nextLine = lineReader(capture);
    if ((await nextLine()) !== "ready") throw new Error("the gratuitous ARP capture did not start");
    void (async () => {
      for (;;) {
        const line = await nextLine();
        seen.push(JSON.parse(line) as GarpSeen);
      }
    })();

    const speakers = new Map<string, ChildProcess>();
    const logs = new Map<string, Array<Record<string, unknown>>>();
    const everyChild: ChildProcess[] = [];
    cleanups.push(async () => {
      await Promise.allSettled(everyChild.map((child) => stopProcess(child)));
    });
    const startSpeaker = (host: LabHost, extraArgs: string[]) => {
      const running = speakers.get(host.name);
      if (running !== undefined && running.exitCode === null && running.signalCode === null) {
        throw new Error(`a speaker already runs on ${host.name}: stop it first`);
      }
      const child = spawnInNetns(host.netns, [
        ...NET_RAW_ONLY,
        process.execPath,
        bollard,
        "speaker",
        "--node-name",
        host.name,
        "--kubeconfig",
        nodeKubeconfig,
        "--config-namespace",
        NS,
        "--memberlist-secret",
        `${NS}/memberlist`,
        "--metrics-port",
        String(METRICS_PORT),
        "--log-level",
        "info",
        ...extraArgs,
      ], { ...process.env, BOLLARD_TEST_STALL_SIGNAL: "SIGUSR2" });
      const lines = logs.get(host.name) ?? [];
      logs.set(host.name, lines);
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          process.stderr.write(`[${host.name} speaker] ${line}\n`);
        }
      });
      speakers.set(host.name, child);
      everyChild.push(child);
    };

    return {
      net,
      cp,
      vip4,
      vip6,
      winner,
      other,
      api,
      startSpeakers(hosts, extraArgs = []) {
        for (const host of hosts) startSpeaker(host, extraArgs);
      },
      async stopSpeaker(host, signal = "SIGTERM") {
        const child = speakers.get(host.name);
        if (child !== undefined) await stopProcess(child, signal);
      },
      signalSpeaker(host, signal) {
        const child = speakers.get(host.name);
        if (child === undefined || child.exitCode !== null || child.signalCode !== null) throw new Error(`no speaker runs on ${host.name}`);
        child.kill(signal);
      },
      async metric(host, name, labels = {}) {
        const response = await fetch(`http://${host.ipv4}:${METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(5000) });
        const text = await response.text();
        let sum = 0;
        for (const line of text.split("\n")) {
          const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
          if (match === null || match[1] !== name) continue;
          const sampleLabels = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
          if (Object.entries(labels).every(([k, v]) => sampleLabels[k] === v)) sum += Number(match[3]);
        }
        return sum;
      },
      garps: () => seen,
      logs: (host, message) => (logs.get(host.name) ?? []).filter((l) => message === undefined || l.msg === message),
      l2StatusCreators: () => creators,
      async l2Statuses() {
        return (await api<{ items: ServiceL2Status[] }>("GET", STATUSES)).items;
      },
      async nodeAssignedEvents() {
        const list = await api<{ items: Array<{ reason?: string; note?: string; regarding?: { name?: string }; series?: { count?: number } }> }>(
          "GET",
          "/apis/events.k8s.io/v1/namespaces/default/events",
        );
        const byNode = new Map<string, number>();
        for (const event of list.items) {
          if (event.reason !== "nodeAssigned" || event.regarding?.name !== "web") continue;
          const node = /from node "([^"]+)"/.exec(event.note ?? "")?.[1] ?? "?";
          byNode.set(node, (byNode.get(node) ?? 0) + (event.series?.count ?? 1));
        }
        return byNode;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
