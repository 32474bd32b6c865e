// Other nodes' ServiceBGPStatus objects against the real API server: BGP mode's shell (as `bollard speaker` runs
// it, with no BGPPeer) removes those of a node whose Node object is gone and, once told the membership view, those
// a dead node left behind — never a live node's, its own being managed by itself, nor one written while its node
// was already counted dead (a partition).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { KubeConfig } from "@kubernetes/client-node";
import { createEventRecorder, createInformer, createKubeConfig, createLogger, type Informer, kubeRequest, resourcePath, resources, sleep, typedResource } from "@bollard/core";
import { Registry } from "prom-client";
import type { EndpointSliceObject, IPAddressPoolObject, NodeObject, ServiceObject } from "../src/election/objects.ts";
import { createBgpShell } from "../src/shell/bgp.ts";
import { bgpStatusName } from "../src/shell/l2-status.ts";

const logger = createLogger({ name: "bgp-status-gc-test", level: process.env.TEST_LOG_LEVEL ?? "silent" });

async function eventually(check: () => Promise<boolean>, what: string, boundMs = 60_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`still not true after ${boundMs} ms: ${what}`);
}

describe("ServiceBGPStatus objects of gone and dead nodes", () => {
  let kubeConfig: KubeConfig;
  const id = randomBytes(3).toString("hex");
  const ns = `bgp-gc-${id}`;
  const self = `gc-${id}-self`;
  const alive = `gc-${id}-alive`;
  const dead = `gc-${id}-dead`;
  const deleted = `gc-${id}-deleted`;
  const abort = new AbortController();
  const informers: Informer<unknown>[] = [];
  let shell: ReturnType<typeof createBgpShell>;
  const statusPath = (name?: string) => resourcePath(resources.serviceBGPStatuses, { namespace: ns, ...(name ? { name } : {}) });
  const names = async () =>
    new Set((await kubeRequest<{ items: { metadata: { name: string } }[] }>(kubeConfig, { path: statusPath() })).items.map((o) => o.metadata.name));
  /** A ServiceBGPStatus as a node's speaker writes it; its uid. */
  const writeStatus = async (node: string, service: string) => {
    const created = await kubeRequest<{ metadata: { uid: string } }>(kubeConfig, {
      method: "POST",
      path: statusPath(),
      body: {
        apiVersion: "metallb.io/v1beta1",
        kind: "ServiceBGPStatus",
        metadata: { name: bgpStatusName(node, "default", service), labels: { "metallb.io/node": node, "metallb.io/service-name": service, "metallb.io/service-namespace": "default" } },
        spec: {},
      },
    });
    return created.metadata.uid;
  };

  before(async () => {
    const path = process.env.BOLLARD_KUBECONFIG;
    assert.ok(path, "BOLLARD_KUBECONFIG must be set: run through `node test/run.ts`");
    kubeConfig = createKubeConfig({ kubeconfig: path });
    await kubeRequest(kubeConfig, { method: "POST", path: "/api/v1/namespaces", body: { metadata: { name: ns } } });
    for (const node of [self, alive, dead]) await kubeRequest(kubeConfig, { method: "POST", path: "/api/v1/nodes", body: { metadata: { name: node } } });
  });
  after(async () => {
    abort.abort();
    for (const i of informers) i.stop();
    await shell?.stop();
    for (const node of [self, alive, dead]) await kubeRequest(kubeConfig, { method: "DELETE", path: `/api/v1/nodes/${node}` }).catch(() => {});
    await kubeRequest(kubeConfig, { method: "DELETE", path: `/api/v1/namespaces/${ns}` }).catch(() => {});
  });

  it("removes a deleted Node's objects at once, a dead node's only when they were left behind", async () => {
    const uids = {
      alive: await writeStatus(alive, "web"),
      dead: await writeStatus(dead, "web"),
      deadLater: await writeStatus(dead, "db"),
      deleted: await writeStatus(deleted, "web"),
    };
    const common = { kubeConfig, logger, signal: abort.signal };
    const nodes = createInformer({ ...common, resource: typedResource<NodeObject>(resources.nodes) });
    const services = createInformer({ ...common, resource: typedResource<ServiceObject>(resources.services), namespace: ns });
    const slices = createInformer({ ...common, resource: typedResource<EndpointSliceObject>(resources.endpointSlices), namespace: ns });
    const pools = createInformer({ ...common, resource: typedResource<IPAddressPoolObject>(resources.ipAddressPools), namespace: ns });
    informers.push(nodes, services, slices, pools);
    shell = createBgpShell({
      kubeConfig,
      nodeName: self,
      configNamespace: ns,
      ignoreExcludeLB: false,
      loadBalancerClass: null,
      logger,
      signal: abort.signal,
      registry: new Registry(),
      events: createEventRecorder({ kubeConfig, component: "bollard.io/speaker", host: self, logger }),
      nodes,
      services,
      slices,
      pools,
      schedule: () => {},
    });
    await Promise.all([...informers, ...shell.inputs].map((i) => i.synced));
    await eventually(async () => shell.statusObjects().length === 4, "the shell's informer sees the four objects");

    // Before this node has converged (live: null), only the Node-less objects go.
    shell.reconcile({ live: null, leftBehind: new Set() });
    await eventually(async () => !(await names()).has(bgpStatusName(deleted, "default", "web")), "the deleted Node's object removed");
    await sleep(500);
    assert.deepEqual([...(await names())].sort(), [bgpStatusName(alive, "default", "web"), bgpStatusName(dead, "default", "db"), bgpStatusName(dead, "default", "web")].sort(), "the other nodes' objects stay");

    // The membership counts `dead` dead; `web`'s object existed then (left behind), `db`'s was written after.
    shell.reconcile({ live: new Set([self, alive]), leftBehind: new Set([uids.dead, uids.deleted]) });
    await eventually(async () => !(await names()).has(bgpStatusName(dead, "default", "web")), "the dead node's left-behind object removed");
    await sleep(500);
    assert.deepEqual([...(await names())].sort(), [bgpStatusName(alive, "default", "web"), bgpStatusName(dead, "default", "db")].sort(), "a live node's object and one written while its node was counted dead stay");
    assert.ok(uids.alive && uids.deadLater);
  });
});
