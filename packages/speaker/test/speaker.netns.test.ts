// The whole speaker: two real `bollard speaker` processes (nobody + CAP_NET_RAW) in node namespaces, a real
// kube-apiserver reachable from them, and the client checking what the LAN sees — the elected node
// answers, the status and event are written, answering survives the API server going away, and when the
// elected node dies the other takes over and moves the client's neighbour entry with gratuitous ARP.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createKubeConfig, kubeRequest } from "@bollard/core";
import { type ControlPlane, createLabNetwork, destroyLabNetwork, execIn, type LabHost, type LabNetwork, startControlPlane } from "@bollard/lab";
import { arpingMacs, NET_RAW_ONLY, ndisc6Mac, neighbourMac, spawnInNetns, stopProcess, waitFor } from "./helpers/netns.ts";

const root = join(import.meta.dirname, "..", "..", "..");
const bollard = join(root, "packages", "cli", "bin", "bollard.ts");
const NS = "metallb-system";

describe("bollard speaker in a lab", () => {
  let net: LabNetwork;
  let cp: ControlPlane;
  let dir: string;
  let nodeKubeconfig: string;
  const speakers = new Map<string, ChildProcess>();
  let vip4: string;
  let vip6: string;
  let winner: LabHost;
  let other: LabHost;

  const api = <T>(method: "GET" | "POST" | "PATCH", path: string, body?: unknown) =>
    kubeRequest<T>(createKubeConfig({ kubeconfig: cp.kubeconfigPath }), {
      method,
      path,
      ...(body === undefined ? {} : { body }),
      ...(method === "PATCH" ? { contentType: "application/merge-patch+json" } : {}),
    });

  const startSpeaker = (host: LabHost) => {
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
      "0",
      "--log-level",
      "error",
    ]);
    child.stdout?.on("data", (chunk: Buffer) => process.stderr.write(`[${host.name} speaker] ${chunk}`));
    speakers.set(host.name, child);
  };

  before(async () => {
    net = await createLabNetwork({ nodes: 2 });
    dir = mkdtempSync(join(tmpdir(), "bollard-speaker-test-"));
    cp = await startControlPlane({ bindAddress: net.hostIPv4, dir: join(dir, "control-plane") });
    // The speakers run as nobody: they get a copy of the kubeconfig they can read.
    nodeKubeconfig = join(dir, "kubeconfig-nodes");
    copyFileSync(cp.kubeconfigPath, nodeKubeconfig);
    chmodSync(dir, 0o755);
    chmodSync(nodeKubeconfig, 0o644);
    execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, "apply", "--server-side", "-f", join(root, "deploy", "crds")]);
    execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, "wait", "--for=condition=established", "--timeout=60s", "crd", "--all"]);

    vip4 = `${net.prefixV4}.200`;
    vip6 = `${net.prefixV6}200`;
    await api("POST", "/api/v1/namespaces", { metadata: { name: NS } });
    await api("POST", `/api/v1/namespaces/${NS}/secrets`, {
      metadata: { name: "memberlist" },
      data: { secretkey: randomBytes(32).toString("base64") },
    });
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
    await api("POST", `/apis/metallb.io/v1beta1/namespaces/${NS}/l2advertisements`, {
      apiVersion: "metallb.io/v1beta1",
      kind: "L2Advertisement",
      metadata: { name: "lab" },
    });
    await api("POST", "/api/v1/namespaces/default/services", {
      metadata: { name: "web" },
      spec: { type: "LoadBalancer", ports: [{ port: 80, targetPort: 8080 }] },
    });
    await api("PATCH", "/api/v1/namespaces/default/services/web/status", { status: { loadBalancer: { ingress: [{ ip: vip4 }, { ip: vip6 }] } } });
    await api("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
      metadata: { name: "web-1", labels: { "kubernetes.io/service-name": "web" } },
      addressType: "IPv4",
      endpoints: [{ addresses: [(net.nodes[0] as LabHost).ipv4], conditions: { ready: true }, nodeName: "node1" }],
      ports: [{ port: 8080 }],
    });

    // The election, worked out here independently: the lowest sha256(node + "#" + first ingress IP).
    const hash = (host: LabHost) => createHash("sha256").update(`${host.name}#${vip4}`).digest();
    [winner, other] = [...net.nodes].sort((a, b) => Buffer.compare(hash(a), hash(b))) as [LabHost, LabHost];
    for (const host of net.nodes) startSpeaker(host);
  });

  after(async () => {
    await Promise.allSettled([...speakers.values()].map((child) => stopProcess(child)));
    await cp?.stop().catch(() => {});
    if (net) await destroyLabNetwork(net.id, 2);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("only the elected node answers ARP and NDP for the Service's addresses", async () => {
    await waitFor("an ARP answer", async () => ((await arpingMacs(net.client.netns, net.client.ifname, vip4, 1)).length > 0 ? true : undefined), 60_000);
    assert.deepEqual([...new Set(await arpingMacs(net.client.netns, net.client.ifname, vip4))], [winner.mac]);
    await execIn(net.client.netns, "ping", ["-c", "1", "-W", "1", vip4], { allowFailure: true });
    assert.equal(await neighbourMac(net.client.netns, vip4), winner.mac);
    assert.equal(await ndisc6Mac(net.client.netns, net.client.ifname, vip6), winner.mac);
  });

  it("writes a ServiceL2Status and a nodeAssigned event", async () => {
    const status = await waitFor("a ServiceL2Status", async () => {
      const list = await api<{ items: Array<{ status?: Record<string, unknown> }> }>("GET", `/apis/metallb.io/v1beta1/namespaces/${NS}/servicel2statuses`);
      return list.items.find((i) => i.status?.node !== undefined)?.status;
    });
    assert.deepEqual(status, { node: winner.name, serviceName: "web", serviceNamespace: "default", interfaces: [{ name: "eth0" }] });
    // Both speakers start together, so the other may announce for a moment before the winner is ready:
    // what matters is that the winner says it took over.
    await waitFor("a nodeAssigned event from the elected node", async () => {
      const list = await api<{ items: Array<{ reason?: string; message?: string; note?: string }> }>("GET", "/api/v1/namespaces/default/events");
      return list.items.find((e) => e.reason === "nodeAssigned" && (e.message ?? e.note ?? "").includes(`"${winner.name}"`));
    });
  });

  it("keeps answering while the API server is gone", async () => {
    await cp.stopApiServer();
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.deepEqual([...new Set(await arpingMacs(net.client.netns, net.client.ifname, vip4))], [winner.mac]);
    } finally {
      await cp.startApiServer();
    }
  });

  it("when the elected node dies, the other takes over and the client's entry follows", async () => {
    assert.equal(await neighbourMac(net.client.netns, vip4), winner.mac, "the client has an entry to update");
    await stopProcess(speakers.get(winner.name) as ChildProcess, "SIGKILL");
    // The client sends nothing: only the new announcer's gratuitous ARP can change the entry.
    await waitFor("the client's entry to move to the other node", async () => ((await neighbourMac(net.client.netns, vip4)) === other.mac ? true : undefined));
    assert.deepEqual([...new Set(await arpingMacs(net.client.netns, net.client.ifname, vip4))], [other.mac]);
  });

  it("a returning node takes its addresses back without two nodes answering", async () => {
    startSpeaker(winner);
    await waitFor("the returning node to answer again", async () => {
      const macs = new Set(await arpingMacs(net.client.netns, net.client.ifname, vip4, 1));
      return macs.size === 1 && macs.has(winner.mac) ? true : undefined;
    }, 30_000);
    assert.deepEqual([...new Set(await arpingMacs(net.client.netns, net.client.ifname, vip4))], [winner.mac]);
  });
});
