// The whole user story on one machine: a real control plane, network namespaces for nodes and a client, and
// Bollard's controller, speakers and ingresses running in them as they would in a cluster, with stand-ins for
// what a cluster would add (kubelets' Node objects, the EndpointSlice controller, kube-proxy).
import { chmod, chown, cp as copyDir, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createKubeConfig, createLogger, kubeRequest, type Logger, resourcePath, resources } from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";
import { type ControlPlane, freePort, startControlPlane } from "../control-plane/control-plane.ts";
import { startEndpointsController, type EndpointsController } from "../endpoints/controller.ts";
import type { LabPod } from "../endpoints/slices.ts";
import { execIn, ip, run, type RunResult } from "../network/exec.ts";
import { createLabNetwork, destroyLabNetwork, LabSetupError, type LabHost, type LabNetwork } from "../network/topology.ts";
import { expandArgs, installBollard, INSTALL_NAMESPACE, type Workload } from "./install.ts";
import type { LabIPFamily } from "./pool.ts";
import { checkImages, removeContainers, spawnLabContainer, waitForContainers, waitForReady, writeServiceAccountDir } from "./containers.ts";
import { type BirdRouter, startBirdRouter } from "../router/bird.ts";
import { type FrrRouter, startFrrRouter } from "../router/frr.ts";
import { type GobgpRouter, startGobgpRouter } from "../router/gobgp.ts";
import type { RouterDaemon, RouterOptions } from "../router/router.ts";
import { type LabProcess, NOBODY, spawnLabProcess, warmCompileCache } from "./processes.ts";
import { installMetalLB, type MetalLBInstallation } from "./metallb.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
// The installed entry point, so that the lab's processes start from Node's compile cache (bin/compile-cache.js).
const bollardBin = join(repoRoot, "packages/cli/bin/bollard.js");
export const LAB_ROOT = process.env.BOLLARD_LAB_ROOT ?? "/tmp/bollard-lab";
export const CONFIG_NAMESPACE = INSTALL_NAMESPACE;
/** The lab router's AS and the nodes' AS in BGP mode. */
export const LAB_ROUTER_ASN = 64501;
export const LAB_NODE_ASN = 64500;
const INGRESS_HTTP_PORT = 8080;
const INGRESS_HTTPS_PORT = 8443;
const BACKEND_PORT = 8000;

/**
 * How the lab runs Bollard's controller, speakers and ingresses: `process` — the repository's sources under the
 * pinned Node, each with the workload's user and capabilities (setpriv); `podman` — the workloads' images from
 * this machine's container storage (`npm run image`), with the chart's security context.
 */
export type LabRuntime = "process" | "podman";
export const LAB_RUNTIMES: readonly LabRuntime[] = ["process", "podman"];

/** BOLLARD_LAB_RUNTIME=podman runs any lab (and so any lab test) from the images. */
export function defaultLabRuntime(): LabRuntime {
  const fromEnv = process.env.BOLLARD_LAB_RUNTIME;
  if (fromEnv === undefined || fromEnv === "") return "process";
  if (!(LAB_RUNTIMES as readonly string[]).includes(fromEnv)) {
    throw new LabSetupError("options", new Error(`BOLLARD_LAB_RUNTIME must be one of ${LAB_RUNTIMES.join(", ")}, got ${fromEnv}`));
  }
  return fromEnv as LabRuntime;
}

export interface LabOptions {
  nodes?: number;
  /**
   * The address families of the ingress's Service, the lab pods' endpoints and (for labPoolManifest) the pool:
   * ipv4 (default), ipv6, or dual (RequireDualStack, IPv4 first). Every host has both addresses either way.
   */
  ipFamily?: LabIPFamily;
  /** `process` unless BOLLARD_LAB_RUNTIME says otherwise. */
  runtime?: LabRuntime;
  id?: string;
  /** Progress lines for people. */
  log?: (line: string) => void;
  /** Recorded in the state: `bollard lab down` removes only labs `bollard lab up` started (tests start their own). */
  startedBy?: string;
  /** BGP mode: a `router` namespace running this daemon, peered with every node; the client sits behind it. */
  bgp?: RouterDaemon;
  /**
   * Who hands out and announces addresses: `bollard` (default), or `metallb` — MetalLB's controller and speakers
   * (L2 with memberlist; lab/metallb.ts) instead of Bollard's, for benchmarks side by side. Bollard's ingress
   * runs either way. Process runtime, layer 2 only.
   */
  implementation?: LabImplementation;
  /** extra `bollard ingress` flags, as chart values add them (e.g. `--watch-ingress-class=nginx`) */
  ingressArgs?: string[];
}

export type LabImplementation = "bollard" | "metallb";
export const LAB_IMPLEMENTATIONS: readonly LabImplementation[] = ["bollard", "metallb"];

export interface LabState {
  id: string;
  dir: string;
  nodes: number;
  ipFamily: LabIPFamily;
  kubeconfig: string;
  kubectl: string;
  runtime: LabRuntime;
  pids: number[];
  /** podman containers (`--runtime podman`), removed by name on `lab down`. */
  containers: string[];
  client: string;
  /** The router's namespace, its daemon and the directory of its sockets (vtysh's, birdc's), in BGP mode. */
  router?: { netns: string; dir: string; daemon: RouterDaemon };
  startedAt: string;
  startedBy?: string;
}

export interface Lab {
  id: string;
  ipFamily: LabIPFamily;
  dir: string;
  network: LabNetwork;
  runtime: LabRuntime;
  implementation: LabImplementation;
  /** MetalLB's version when `implementation` is metallb. */
  metallbVersion?: string;
  controlPlane: ControlPlane;
  /** BGP mode's router (FRR, BIRD or GoBGP: `router.daemon`), peered with every node. */
  router?: LabRouterHandle;
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
  kubectl(args: string[], input?: string): Promise<RunResult>;
  /** Runs a command in the client namespace: outside the cluster. */
  execClient(cmd: string, args: string[], opts?: { allowFailure?: boolean; timeoutMs?: number }): Promise<RunResult>;
  processes(): LabProcess[];
  /** Crashes a node: its processes are killed and its link goes down; its pods stop being ready. */
  stopNode(name: string): Promise<void>;
  restartController(): Promise<void>;
  /** Starts a node's speaker anew (stopping it first if it still runs): after a test or bench killed it. */
  restartSpeaker(node: string): Promise<void>;
  down(): Promise<void>;
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const say = opts.log ?? (() => {});
  const nodeCount = opts.nodes ?? 2;
  const ipFamily = opts.ipFamily ?? "ipv4";
  const families = { v4: ipFamily !== "ipv6", v6: ipFamily !== "ipv4" };
  const runtime = opts.runtime ?? defaultLabRuntime();
  const implementation = opts.implementation ?? "bollard";
  if (implementation === "metallb" && (runtime !== "process" || opts.bgp !== undefined)) {
    throw new LabSetupError("options", new Error("implementation metallb runs with the process runtime and layer 2 only"));
  }
  const network = await createLabNetwork({ nodes: nodeCount, ...(opts.id ? { id: opts.id } : {}), ...(opts.bgp ? { router: true } : {}) });
  const dir = join(LAB_ROOT, network.id);
  const logDir = join(dir, "logs");
  const procs: LabProcess[] = [];
  let controlPlane: ControlPlane | undefined;
  let endpoints: EndpointsController | undefined;
  let router: LabRouterHandle | undefined;
  const abort = new AbortController();
  const logger: Logger = createLogger({ name: "lab", level: process.env.LAB_LOG_LEVEL ?? "warn" });

  const down = async () => {
    abort.abort();
    endpoints?.stop();
    await Promise.all(procs.map((p) => p.stop("SIGTERM", 3000)));
    // Whatever a failed start left (a container whose `podman run` never got going), before its namespace goes.
    await removeContainers(procs.flatMap((p) => (p.container ? [p.container] : [])));
    await router?.stop();
    await controlPlane?.stop();
    await destroyLabNetwork(network.id, nodeCount);
    // For debugging a failed run: BOLLARD_LAB_KEEP_LOGS=DIR keeps the components' logs there.
    const keep = process.env.BOLLARD_LAB_KEEP_LOGS;
    if (keep) await copyDir(logDir, join(keep, network.id), { recursive: true }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };

  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    say(name);
    try {
      return await fn();
    } catch (err) {
      throw err instanceof LabSetupError ? err : new LabSetupError(name, err);
    }
  };

  try {
    await mkdir(logDir, { recursive: true });
    await chmod(dir, 0o755);
    say(`network: ${network.nodes.map((n) => `${n.name} ${n.ipv4}`).join(", ")}, client ${network.client.ipv4}`);
    controlPlane = await step("control plane (etcd + kube-apiserver)", () =>
      startControlPlane({ bindAddress: network.hostIPv4, dir: join(dir, "control-plane"), kubeconfigPath: join(dir, "kubeconfig") }),
    );
    const cp = controlPlane;
    const kubeConfig = createKubeConfig({ kubeconfig: cp.kubeconfigPath });
    const kubectl = (args: string[], input?: string) =>
      run(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, ...args], input === undefined ? {} : { input });

    const installation = await step("install Bollard: kubectl apply -f deploy/manifests/bollard.yaml + its membership Secret", () =>
      installBollard({ manifestPath: join(repoRoot, "deploy/manifests/bollard.yaml"), controlPlane: cp, kubectl, dir }),
    );
    if (ipFamily !== "ipv4") {
      await step(`the ingress's Service as ${ipFamily === "dual" ? "RequireDualStack (IPv4, IPv6)" : "IPv6"}, as a chart user would set it`, () =>
        setServiceFamilies(kubeConfig, INSTALL_NAMESPACE, "bollard-ingress", ipFamily),
      );
    }
    await step("mark IngressClass bollard the default class", () =>
      kubectl(["annotate", "ingressclass", "bollard", "ingressclass.kubernetes.io/is-default-class=true"]),
    );
    await step("Node objects, as kubelets would register them", () => registerNodes(kubeConfig, network.nodes));
    let metallb: MetalLBInstallation | undefined;
    if (implementation === "metallb") {
      metallb = await step("install MetalLB: its manifest's CRDs, RBAC and ServiceAccounts, speaker pod objects, memberlist key", () =>
        installMetalLB({ controlPlane: cp, kubeConfig, kubectl, dir, nodes: network.nodes }),
      );
    }

    const pods: LabPod[] = [];
    // One lab pod per address family: the EndpointSlice stand-in writes a slice per family.
    const podIPs = (node: LabHost) => [...(families.v4 ? [node.ipv4] : []), ...(families.v6 ? [node.ipv6] : [])];
    for (const node of network.nodes) for (const podIP of podIPs(node)) {
      pods.push({
        name: `bollard-ingress-${node.name}`,
        namespace: INSTALL_NAMESPACE,
        nodeName: node.name,
        ip: podIP,
        labels: installation.ingress.podLabels,
        ports: [
          { name: "http", port: INGRESS_HTTP_PORT },
          { name: "https", port: INGRESS_HTTPS_PORT },
        ],
        ready: true,
      });
      pods.push({
        name: `demo-${node.name}`,
        namespace: "default",
        nodeName: node.name,
        ip: podIP,
        // (the node label lets a test make a Service of one node's backend: canaries, affinity)
        labels: { app: "demo", "lab.bollard.dev/node": node.name },
        ports: [{ name: "http", port: BACKEND_PORT }],
        ready: true,
      });
    }
    endpoints = await step("EndpointSlice controller stand-in", () =>
      startEndpointsController({ kubeConfig, logger, signal: abort.signal, pods }),
    );

    if (opts.bgp !== undefined && network.router !== undefined) {
      const r = network.router;
      // BFD 200 ms × 3 on the IPv4 sessions where the daemon has BFD (GoBGP has none).
      const bfd = opts.bgp === "gobgp" ? {} : { bfd: { receiveMs: 200, transmitMs: 200, multiplier: 3 } };
      const options: RouterOptions = {
        netns: r.netns,
        dir: join(dir, "router"),
        asn: LAB_ROUTER_ASN,
        routerId: r.ipv4,
        gracefulRestart: true,
        neighbors: [...network.nodes.map((n) => ({ address: n.ipv4, asn: LAB_NODE_ASN, ...bfd })), ...network.nodes.map((n) => ({ address: n.ipv6, asn: LAB_NODE_ASN }))],
      };
      const daemons = { frr: "FRR (zebra, bgpd, bfdd)", bird: "BIRD 2", gobgp: "GoBGP (gobgpd; its RIB copied to the kernel by the lab)" };
      router = await step(`router: ${daemons[opts.bgp]} in ${r.netns}, AS ${LAB_ROUTER_ASN}, peers ${network.nodes.map((n) => n.ipv4).join(", ")}`, () => startLabRouter(opts.bgp as RouterDaemon, options));
    }

    const node = process.execPath;
    // What the chart's downward API gives each pod.
    const podEnv = (w: Workload, nodeName: string) => ({ NODE_NAME: nodeName, POD_NAMESPACE: INSTALL_NAMESPACE, POD_NAME: `${w.name}-${nodeName}` });
    if (runtime === "podman") {
      await step(`podman: images ${[...new Set([installation.controller, installation.speaker, installation.ingress].map((w) => w.image))].join(", ")}`, () =>
        checkImages([installation.controller.image, installation.speaker.image, installation.ingress.image]),
      );
    }
    // What the kubelet mounts into each pod: its ServiceAccount's token, the cluster CA and the namespace; plus
    // the API server's address as the kubernetes Service's environment variables.
    const apiServer = new URL(cp.server);
    const inCluster = { KUBERNETES_SERVICE_HOST: apiServer.hostname, KUBERNETES_SERVICE_PORT: apiServer.port || "443" };
    const serviceAccountDirs: Record<string, string> = {};
    if (runtime === "podman") {
      for (const [account, token] of Object.entries(installation.tokens)) {
        serviceAccountDirs[account] = await writeServiceAccountDir(join(dir, "serviceaccounts", account), token, cp.caPem, INSTALL_NAMESPACE);
      }
    }
    /** One component: a process from the sources, or a container from the workload's image. */
    const component = (c: { label: string; w: Workload; nodeName: string; netns?: string; extraArgs: string[]; netRawOnly?: boolean }) => {
      // The container's own env (the chart's memory setting MALLOC_ARENA_MAX) and the downward API's; its node flags
      // (the chart's command) go on node's command line.
      const env = { ...c.w.env, ...podEnv(c.w, c.nodeName) };
      const args = expandArgs(c.w.args, env);
      if (runtime === "podman") {
        return spawnLabContainer({
          name: `bollard-${network.id}-${c.label}`,
          label: c.label,
          ...(c.netns ? { netns: c.netns } : {}),
          image: c.w.image,
          ...(c.w.command === undefined ? {} : { entrypoint: c.w.command }),
          args: [...args, ...c.extraArgs],
          env: { ...env, ...inCluster },
          security: c.w.security,
          serviceAccountDir: serviceAccountDirs[c.w.serviceAccount] as string,
          logDir,
        });
      }
      return spawnLabProcess({
        name: c.label,
        ...(c.netns ? { netns: c.netns } : {}),
        command: node,
        args: [...c.w.nodeFlags, bollardBin, ...args, `--kubeconfig=${installation.kubeconfigs[c.w.serviceAccount]}`, ...c.extraArgs],
        env: c.netRawOnly ? { ...env, BOLLARD_COMPILE_CACHE: nobodyCompileCache } : env,
        logDir,
        ...(c.netRawOnly ? { netRawOnly: true } : {}),
      });
    };
    // The controller is the one component not in a node namespace (a Deployment's pod network; here the host's),
    // where the chart's metrics port could collide: it gets a free port, on which its /readyz is probed.
    const controllerMetricsPort = await freePort("127.0.0.1");
    const startController = (): LabProcess => {
      if (metallb !== undefined) {
        const c = metallb.controller(controllerMetricsPort);
        return spawnLabProcess({ name: "controller", command: c.command, args: c.args, env: c.env, logDir });
      }
      return component({ label: "controller", w: installation.controller, nodeName: "controller", extraArgs: [`--metrics-port=${controllerMetricsPort}`] });
    };
    const startSpeaker = (host: LabHost): LabProcess => {
      if (metallb !== undefined) {
        const c = metallb.speaker(host);
        // The DaemonSet's container: NET_RAW its only capability (the lab runs it as nobody, as Bollard's).
        return spawnLabProcess({ name: `${host.name}-speaker`, netns: host.netns, command: c.command, args: c.args, env: c.env, logDir, netRawOnly: true });
      }
      return component({ label: `${host.name}-speaker`, w: installation.speaker, nodeName: host.name, netns: host.netns, extraArgs: [], netRawOnly: true });
    };
    /** Stops the process of that name if it still runs and starts its successor in the same place. */
    const restartProcess = async (name: string, start: () => LabProcess): Promise<void> => {
      const i = procs.findIndex((p) => p.name === name);
      if (i >= 0) await procs[i]?.stop();
      const next = start();
      if (i >= 0) procs[i] = next;
      else procs.push(next);
    };
    // Every process starts warm, as a pod does from its image: root's compile cache (the default directory) and
    // one the non-root speakers can read, filled before any of them starts, for each set of node flags the
    // workloads run with (the cache is keyed by them, as the images' is: deploy/container/Containerfile).
    const nobodyCompileCache = join(dir, "compile-cache-nobody");
    if (runtime !== "podman") {
      await step("compile cache for the processes (root, and nobody for the speakers)", async () => {
        const flagSets = new Map([installation.controller, installation.ingress].map((w) => [w.nodeFlags.join(" "), w.nodeFlags]));
        for (const flags of flagSets.values()) await warmCompileCache(process.env, undefined, flags);
        await mkdir(nobodyCompileCache);
        await chown(nobodyCompileCache, Number(NOBODY), Number(NOBODY));
        await warmCompileCache({ ...process.env, BOLLARD_COMPILE_CACHE: nobodyCompileCache }, NOBODY, installation.speaker.nodeFlags);
      });
    }
    await step(`${metallb === undefined ? "bollard" : `MetalLB ${metallb.version}`} controller (${runtime})`, async () => {
      procs.push(startController());
    });
    for (const host of network.nodes) {
      const what = runtime === "podman" ? "speaker and ingress containers" : "speaker (nobody + CAP_NET_RAW), ingress";
      await step(`${host.name}: kube-proxy stand-in, ${what}, demo backend`, async () => {
        procs.push(
          spawnLabProcess({
            name: `${host.name}-kube-proxy`,
            netns: host.netns,
            command: node,
            args: [bollardBin, "lab", "kube-proxy", "--kubeconfig", cp.kubeconfigPath, "--node-name", host.name, "--uplink", host.ifname],
            logDir,
          }),
          startSpeaker(host),
          // One ingress per node here (a DaemonSet's placement); one worker each keeps two cores free enough.
          component({ label: `${host.name}-ingress`, w: installation.ingress, nodeName: host.name, netns: host.netns, extraArgs: ["--workers=1", ...(opts.ingressArgs ?? [])] }),
          spawnLabProcess({
            name: `${host.name}-demo`,
            netns: host.netns,
            command: node,
            // "::" takes IPv4 too (as IPv4-mapped addresses).
            args: [bollardBin, "lab", "backend", "--name", `demo-${host.name}`, "--listen", `${families.v6 ? "::" : "0.0.0.0"}:${BACKEND_PORT}`],
            logDir,
          }),
        );
      });
    }
    if (runtime === "podman") await step("podman: every container running", () => waitForContainers(procs));
    // The lab is up when its components are ready (a kubelet's readiness probes): on a loaded machine node spends
    // tens of seconds loading the application, and a story started before that timed out in its first step.
    // MetalLB's probes read /metrics.
    const probes = [metallb === undefined ? `http://127.0.0.1:${controllerMetricsPort}/readyz` : `http://127.0.0.1:${controllerMetricsPort}/metrics`];
    for (const host of network.nodes) {
      probes.push(metallb === undefined ? `http://${host.ipv4}:${metricsPort(installation.speaker)}/readyz` : `http://${host.ipv4}:${metallb.speaker(host).port}/metrics`);
      probes.push(`http://${host.ipv4}:${metricsPort(installation.ingress)}/readyz`);
    }
    await step("every component ready (/readyz)", () => waitForReady(probes, procs.filter((p) => !/-(kube-proxy|demo)$/.test(p.name))));
    const state: LabState = {
      id: network.id,
      dir,
      nodes: nodeCount,
      ipFamily,
      kubeconfig: cp.kubeconfigPath,
      kubectl: cp.binaries.kubectl,
      runtime,
      pids: [process.pid, ...procs.map((p) => p.child.pid ?? 0), cp.apiServerPid ?? 0, cp.etcdPid ?? 0, ...(router?.pids() ?? [])].filter((p) => p > 0),
      containers: procs.flatMap((p) => (p.container ? [p.container] : [])),
      client: network.client.netns,
      ...(router && network.router ? { router: { netns: network.router.netns, dir: join(dir, "router"), daemon: router.daemon } } : {}),
      startedAt: new Date().toISOString(),
      ...(opts.startedBy ? { startedBy: opts.startedBy } : {}),
    };
    await writeFile(join(dir, "state.json"), `${JSON.stringify(state, null, 2)}\n`);

    return {
      id: network.id,
      ipFamily,
      dir,
      network,
      runtime,
      implementation,
      ...(metallb === undefined ? {} : { metallbVersion: metallb.version }),
      controlPlane: cp,
      ...(router ? { router } : {}),
      kubeConfig,
      kubeconfigPath: cp.kubeconfigPath,
      kubectl,
      execClient: (cmd, args, o) => execIn(network.client.netns, cmd, args, o),
      processes: () => [...procs],
      async stopNode(name) {
        const host = network.nodes.find((n) => n.name === name);
        if (host === undefined) throw new Error(`no lab node ${name}`);
        await Promise.all(procs.filter((p) => p.netns === host.netns).map((p) => p.stop("SIGKILL", 1000)));
        await ip(["-n", host.netns, "link", "set", host.ifname, "down"]);
        for (const pod of pods) if (pod.nodeName === name) pod.ready = false;
        endpoints?.setPods([...pods]);
      },
      restartController: () => restartProcess("controller", startController),
      async restartSpeaker(name) {
        const host = network.nodes.find((n) => n.name === name);
        if (host === undefined) throw new Error(`no lab node ${name}`);
        await restartProcess(`${name}-speaker`, () => startSpeaker(host));
      },
      down,
    };
  } catch (err) {
    await down().catch(() => {});
    throw err;
  }
}

/**
 * Re-creates a Service with the lab's families (before the controller runs, so it never had an address): its first
 * family cannot be changed in place, and a chart user would have set them from the start.
 */
async function setServiceFamilies(kubeConfig: KubeConfig, namespace: string, name: string, ipFamily: LabIPFamily): Promise<void> {
  const path = resourcePath(resources.services, { namespace });
  type ServiceObject = { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  const service = await kubeRequest<ServiceObject>(kubeConfig, { path: resourcePath(resources.services, { namespace, name }) });
  const { clusterIP: _clusterIP, clusterIPs: _clusterIPs, ipFamilies: _families, ipFamilyPolicy: _policy, ...spec } = service.spec;
  const { name: keptName, labels, annotations } = service.metadata;
  await kubeRequest(kubeConfig, { method: "DELETE", path: resourcePath(resources.services, { namespace, name }) });
  await kubeRequest(kubeConfig, {
    method: "POST",
    path,
    body: {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: keptName, labels, annotations },
      spec: {
        ...spec,
        ...(ipFamily === "dual" ? { ipFamilyPolicy: "RequireDualStack", ipFamilies: ["IPv4", "IPv6"] } : { ipFamilyPolicy: "SingleStack", ipFamilies: ["IPv6"] }),
      },
    },
  });
}

/** The workload's `--metrics-port=N` (its /healthz and /readyz). */
function metricsPort(w: Workload): number {
  const arg = w.args.find((a) => a.startsWith("--metrics-port="));
  const port = Number(arg?.slice("--metrics-port=".length));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${w.kind} ${w.name} has no --metrics-port argument to probe`);
  return port;
}

async function registerNodes(kubeConfig: KubeConfig, nodes: LabHost[]): Promise<void> {
  for (const node of nodes) {
    await kubeRequest(kubeConfig, {
      method: "POST",
      path: resourcePath(resources.nodes),
      body: {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: node.name, labels: { "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux" } },
      },
    });
    const now = new Date().toISOString();
    await kubeRequest(kubeConfig, {
      method: "PATCH",
      path: resourcePath(resources.nodes, { name: node.name, subresource: "status" }),
      contentType: "application/merge-patch+json",
      body: {
        status: {
          addresses: [
            { type: "InternalIP", address: node.ipv4 },
            { type: "InternalIP", address: node.ipv6 },
            { type: "Hostname", address: node.name },
          ],
          conditions: [
            { type: "Ready", status: "True", reason: "KubeletReady", message: "lab node", lastHeartbeatTime: now, lastTransitionTime: now },
            { type: "NetworkUnavailable", status: "False", reason: "LabNetwork", message: "lab bridge", lastHeartbeatTime: now, lastTransitionTime: now },
          ],
        },
      },
    });
  }
}

/** The lab's router: the daemon's own handle, told apart by `daemon` (FRR's has `vtysh`, BIRD's `birdc`, GoBGP's `gobgp`). */
export type LabRouterHandle = FrrRouter | BirdRouter | GobgpRouter;

function startLabRouter(daemon: RouterDaemon, options: RouterOptions): Promise<LabRouterHandle> {
  if (daemon === "bird") return startBirdRouter(options);
  if (daemon === "gobgp") return startGobgpRouter(options);
  return startFrrRouter(options);
}
