// The chart's RBAC is enough: each component runs as a local process with the arguments of its chart workload
// and a token of its chart ServiceAccount (TokenRequest), and does its job against a real API server.
// The speaker and the ingress run in a lab node's network namespace as nobody, the speaker with only
// CAP_NET_RAW and the ingress with no capability (what their pods get), so the speaker's ARP stays on the lab's
// bridge; the control plane listens on the lab's host address for them.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import type { Server } from "node:http";
import {
  type ControlPlane,
  createLabNetwork,
  destroyLabNetwork,
  execIn,
  freePort,
  type LabNetwork,
  startBackend,
  startControlPlane,
} from "@bollard/lab";
import { chartDir, find, helm, type Manifest, parseManifests, root, run } from "./helm.ts";

const ns = "metallb-system";
const NOBODY = "65534";

type Component = { name: string; child: ChildProcess; output: () => string; stop: () => Promise<void> };

/** Starts `bollard` with a workload's container args, $(VAR) references expanded as the kubelet would. */
function startComponent(options: {
  name: string;
  args: string[];
  env: Record<string, string>;
  netns?: string;
  /** Run as nobody with only these capabilities (what the chart's securityContext leaves the container). */
  nonRoot?: { capabilities: string[] };
}): Component {
  const args = options.args.map((a) => a.replace(/\$\((\w+)\)/g, (_, v: string) => options.env[v] ?? ""));
  const setpriv = ["setpriv", "--pdeathsig", "TERM"];
  if (options.nonRoot) {
    const caps = ["-all", ...options.nonRoot.capabilities.map((c) => `+${c}`)].join(",");
    setpriv.push("--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--inh-caps", caps, "--bounding-set", caps);
    if (options.nonRoot.capabilities.length > 0) setpriv.push("--ambient-caps", caps);
  }
  const argv = [...setpriv, "--", process.execPath, join(root, "packages/cli/bin/bollard.ts"), ...args];
  const [cmd, ...rest] = options.netns === undefined ? argv : ["ip", "netns", "exec", options.netns, ...argv];
  const child = spawn(cmd as string, rest, { cwd: root, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    name: options.name,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, components: Component[], timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    for (const c of components) {
      if (c.child.exitCode !== null) assert.fail(`${c.name} exited (${c.child.exitCode}) while waiting for ${what}:\n${c.output()}`);
    }
    await sleep(200);
  }
  const logs = components.map((c) => `--- ${c.name} ---\n${c.output().split("\n").slice(-30).join("\n")}`).join("\n");
  assert.fail(`${what} did not happen${last ? ` (last error: ${(last as Error).message})` : ""}\n${logs}`);
}

describe("components with their chart ServiceAccounts", () => {
  let network: LabNetwork;
  let cp: ControlPlane;
  let dir: string;
  let manifests: Manifest[];
  const components: Component[] = [];
  let backend: Server | undefined;
  const kubectl = (args: string[], input?: string) => run(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, ...args], { input });
  const json = <T>(args: string[]) => JSON.parse(kubectl([...args, "-o", "json"])) as T;

  /** A kubeconfig that authenticates as the ServiceAccount, readable by the unprivileged speaker. */
  async function tokenKubeconfig(serviceAccount: string): Promise<string> {
    const token = kubectl(["create", "token", serviceAccount, "-n", ns, "--duration=1h"]).trim();
    const path = join(dir, `${serviceAccount}.kubeconfig`);
    await cp.writeTokenKubeconfig(path, token);
    await chmod(path, 0o644);
    return path;
  }

  const containerArgs = (kind: string, name: string) =>
    (find(manifests, kind, name).spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]
      ?.args as string[];

  before(async () => {
    network = await createLabNetwork({ nodes: 1 });
    cp = await startControlPlane({ bindAddress: network.hostIPv4 });
    dir = await mkdtemp(join(tmpdir(), "bollard-pkg-"));
    await chmod(dir, 0o755);
    run(helm(), [
      "--kubeconfig", cp.kubeconfigPath, "install", "bollard", chartDir, "--namespace", ns, "--create-namespace",
      "--set", `controller.metricsPort=${await freePort()}`,
    ]);
    manifests = parseManifests(run(helm(), ["--kubeconfig", cp.kubeconfigPath, "get", "manifest", "bollard", "--namespace", ns]));
  });

  after(async () => {
    await Promise.all(components.map((c) => c.stop()));
    backend?.close();
    await cp?.stop();
    if (network) await destroyLabNetwork(network.id, 1);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("allocates, announces and reports with nothing but the chart's permissions", async () => {
    const node = network.nodes[0] as LabNetwork["nodes"][number];
    // What a kubelet and the EndpointSlice controller would have written.
    kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: node.name, labels: { "kubernetes.io/hostname": node.name } },
    }));
    const now = new Date().toISOString();
    kubectl(["patch", "node", node.name, "--subresource=status", "--type=merge", "-p", JSON.stringify({
      status: {
        addresses: [{ type: "InternalIP", address: node.ipv4 }],
        conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "lab", lastHeartbeatTime: now, lastTransitionTime: now }],
      },
    })]);
    kubectl(["create", "namespace", "demo"]);
    // The backend listens on the host's leg of the lab bridge, which the node namespace reaches.
    const backendPort = await freePort(network.hostIPv4);
    backend = await startBackend("web", network.hostIPv4, backendPort);
    kubectl(["apply", "-f", "-"], [
      `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: ${ns}}
spec: {addresses: ["${network.poolRangeV4}"]}`,
      `apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab, namespace: ${ns}}
spec: {ipAddressPools: [lab]}`,
      `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: ${backendPort}}]`,
      `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: ${backendPort}, protocol: TCP}]
endpoints: [{addresses: ["${network.hostIPv4}"], nodeName: ${node.name}, conditions: {ready: true}}]`,
      `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: demo}
spec:
  ingressClassName: bollard
  rules:
    - host: demo.local
      http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}]`,
    ].join("\n---\n"));

    components.push(
      startComponent({
        name: "controller",
        args: [...containerArgs("Deployment", "bollard-controller"), `--kubeconfig=${await tokenKubeconfig("bollard-controller")}`],
        env: { POD_NAME: "bollard-controller-7d9f-abcde", POD_NAMESPACE: ns, NODE_NAME: node.name },
      }),
      startComponent({
        name: "speaker",
        args: [...containerArgs("DaemonSet", "bollard-speaker"), `--kubeconfig=${await tokenKubeconfig("bollard-speaker")}`],
        env: { POD_NAME: "bollard-speaker-x2k4p", POD_NAMESPACE: ns, NODE_NAME: node.name },
        netns: node.netns,
        nonRoot: { capabilities: ["net_raw"] },
      }),
      startComponent({
        name: "ingress",
        args: [...containerArgs("Deployment", "bollard-ingress"), `--kubeconfig=${await tokenKubeconfig("bollard-ingress")}`],
        env: { POD_NAME: "bollard-ingress-5c8d-q7w2e", POD_NAMESPACE: ns, NODE_NAME: node.name },
        netns: node.netns,
        nonRoot: { capabilities: [] },
      }),
    );

    // Controller: the address, its pool annotation, an Event, the pool's status, and the Lease.
    type Service = { metadata: { annotations?: Record<string, string> }; status: { loadBalancer?: { ingress?: { ip: string }[] } } };
    const ip = await eventually("an address for demo/web", () => json<Service>(["get", "service", "web", "-n", "demo"]).status.loadBalancer?.ingress?.[0]?.ip, components);
    assert.ok(ip.startsWith(network.prefixV4), `${ip} from the lab pool ${network.poolRangeV4}`);
    assert.equal(json<Service>(["get", "service", "web", "-n", "demo"]).metadata.annotations?.["metallb.io/ip-allocated-from-pool"], "lab");
    type EventList = { items: { reason: string; reportingController?: string; regarding: { name: string } }[] };
    await eventually("an IPAllocated Event", () =>
      json<EventList>(["get", "events.events.k8s.io", "-n", "demo"]).items.find((e) => e.reason === "IPAllocated" && e.regarding.name === "web"), components);
    await eventually("the pool's status", () => {
      const assigned = json<{ status?: { assignedIPv4?: number } }>(["get", "ipaddresspool", "lab", "-n", ns]).status?.assignedIPv4;
      return assigned !== undefined && assigned >= 1 ? assigned : undefined;
    }, components);
    assert.equal(kubectl(["get", "lease", "bollard-controller", "-n", ns, "-o", "jsonpath={.spec.holderIdentity}"]), "bollard-controller-7d9f-abcde");

    // Speaker: it read its membership Secret (else it cannot start), watched everything, announced, and wrote
    // a ServiceL2Status and a nodeAssigned Event.
    type L2Status = { status?: { node?: string; serviceName?: string; serviceNamespace?: string } };
    const status = await eventually("a ServiceL2Status for demo/web", () =>
      json<{ items: L2Status[] }>(["get", "servicel2statuses.metallb.io", "-n", ns]).items.find((s) => s.status?.serviceName === "web"), components);
    assert.equal(status.status?.node, node.name);
    assert.equal(status.status?.serviceNamespace, "demo");
    await eventually("a nodeAssigned Event", () =>
      json<EventList>(["get", "events.events.k8s.io", "-n", "demo"]).items.find((e) => e.reason === "nodeAssigned"), components);

    // ConfigurationState (MetalLB v0.16), as `kubectl get configurationstates -A` lists them: the controller's and
    // this node's speaker's are Valid; Invalid with the error while an overlapping pool exists; Valid once it is gone.
    type State = { metadata: { name: string }; status?: { result?: string; errorSummary?: string } };
    const stateOf = (name: string) => json<{ items: State[] }>(["get", "configurationstates", "-A"]).items.find((s) => s.metadata.name === name)?.status;
    const stateNames = ["controller", `speaker-${node.name}`];
    for (const name of stateNames) await eventually(`ConfigurationState ${name} Valid`, () => (stateOf(name)?.result === "Valid" ? true : undefined), components);
    kubectl(["apply", "-f", "-"], `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: overlaps-lab, namespace: ${ns}}
spec: {addresses: ["${network.poolRangeV4}"]}`);
    for (const name of stateNames) {
      const invalid = await eventually(`ConfigurationState ${name} Invalid`, () => {
        const state = stateOf(name);
        return state?.result === "Invalid" ? state : undefined;
      }, components);
      assert.match(invalid.errorSummary ?? "", /overlaps/);
    }
    kubectl(["delete", "ipaddresspool", "overlaps-lab", "-n", ns]);
    for (const name of stateNames) await eventually(`ConfigurationState ${name} Valid again`, () => (stateOf(name)?.result === "Valid" ? true : undefined), components);

    // Ingress: serves the route (from outside, through the lab bridge) and publishes its own Service's address,
    // which the controller allocated, into the Ingress's status.
    const ingressIP = await eventually("an address for the chart's ingress Service", () =>
      json<Service>(["get", "service", "bollard-ingress", "-n", ns]).status.loadBalancer?.ingress?.[0]?.ip, components);
    const published = await eventually("the Ingress's status", () =>
      json<Service>(["get", "ingress", "web", "-n", "demo"]).status.loadBalancer?.ingress?.[0]?.ip, components);
    assert.equal(published, ingressIP);
    const httpPort = /^--http-port=(\d+)$/.exec(containerArgs("Deployment", "bollard-ingress").find((a) => a.startsWith("--http-port=")) ?? "")?.[1];
    assert.ok(httpPort);
    const url = `http://demo.local:${httpPort}/hello`;
    // Asynchronously: the backend answers from this very process.
    const served = await eventually("the route served", async () => {
      const curl = await execIn(network.client.netns, "curl", ["-sS", "--max-time", "10", "--resolve", `demo.local:${httpPort}:${node.ipv4}`, url]);
      return curl.stdout.trim() === "web" ? curl.stdout : undefined;
    }, components);
    assert.equal(served.trim(), "web");

    for (const c of components) {
      assert.doesNotMatch(c.output(), /forbidden|\b403\b/i, `${c.name} was refused something:\n${c.output()}`);
    }
  });
});
