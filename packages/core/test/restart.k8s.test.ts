// What happens while kube-apiserver is away. This file starts a control plane of its own, so that
// stopping its API server cannot disturb the test files running in parallel on the shared one.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import type { KubeConfig } from "@kubernetes/client-node";
import { createInformer, createKubeConfig, KubeRequestError, kubeRequest, resources, runLeaderElection, typedResource } from "../src/index.ts";
import { kubeAgents } from "../src/kube/request.ts";
import { type ConfigMap, createNamespace, eventually, putConfigMap, testLogger } from "./k8s-helpers.ts";

const configMapType = typedResource<ConfigMap>(resources.configMaps);

type PrivateControlPlane = {
  kubeconfigPath: string;
  etcdUrl: string;
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  stop(): Promise<void>;
};

/** etcd's JSON gateway, to change what the API server will find when it comes back. */
async function etcd<T>(url: string, path: string, body: object): Promise<T> {
  const res = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, `etcd ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

describe("surviving an API-server restart", () => {
  let cp: PrivateControlPlane;
  let kubeConfig: KubeConfig;
  let ns: string;
  const stop = new AbortController();

  before(async () => {
    assert.ok(process.env.BOLLARD_KUBECONFIG, "run through `node test/run.ts`");
    // @bollard/lab depends on @bollard/core, so core's TypeScript project cannot reference it; load it at run time.
    const labModule = "@bollard/lab";
    const lab = (await import(labModule)) as { startControlPlane(): Promise<PrivateControlPlane> };
    cp = await lab.startControlPlane();
    kubeConfig = createKubeConfig({ kubeconfig: cp.kubeconfigPath });
    ns = await createNamespace(kubeConfig, "core-restart");
  });
  let apiServerDown = false;
  const stopApiServer = async () => {
    apiServerDown = true;
    await cp.stopApiServer();
  };
  const startApiServer = async () => {
    await cp.startApiServer();
    apiServerDown = false;
  };
  afterEach(async () => {
    if (apiServerDown) await startApiServer(); // a failed test must not take the next one's server
  });
  after(async () => {
    stop.abort();
    await cp?.stop();
  });

  it("requests: a kept-alive connection dies with the server; while it is down requests fail typed, and the first request after it is back succeeds on a new connection", async () => {
    const own = createKubeConfig({ kubeconfig: cp.kubeconfigPath });
    const sockets = new Set<unknown>();
    kubeAgents(own).requests.on("keylog", (_line: Buffer, socket: unknown) => sockets.add(socket));
    const get = () => kubeRequest<{ metadata: { name: string } }>(own, { path: `/api/v1/namespaces/${ns}`, timeoutMs: 10_000 });
    for (let i = 0; i < 5; i++) await get();
    assert.equal(sockets.size, 1);

    await stopApiServer();
    await assert.rejects(get(), KubeRequestError);
    await startApiServer();
    assert.equal((await get()).metadata.name, ns);
    assert.equal(sockets.size, 2, "one new connection after the restart");
    for (let i = 0; i < 5; i++) await get();
    assert.equal(sockets.size, 2);
  });

  it("informer: keeps the last state while the server is down, relists on 410 with DELETED for what vanished, then one RESYNC", async () => {
    for (const name of ["keep-1", "vanish", "keep-2"]) await putConfigMap(kubeConfig, ns, name, { v: "1" });
    const informer = createInformer<ConfigMap>({
      kubeConfig,
      resource: configMapType,
      namespace: ns,
      logger: testLogger,
      signal: stop.signal,
      backoff: { initialMs: 50, maxMs: 500 },
    });
    await informer.synced;
    const events: string[] = [];
    informer.onChange((e) => events.push(`${e.type}${e.object ? ` ${e.object.metadata?.name}` : ""}`));

    await stopApiServer();
    assert.deepEqual(informer.list().map((o) => o.metadata?.name).sort(), ["keep-1", "keep-2", "vanish"]);
    assert.equal(informer.hasSynced(), true);
    const late = createInformer<ConfigMap>({ kubeConfig, resource: configMapType, namespace: ns, logger: testLogger, signal: stop.signal, backoff: { initialMs: 50, maxMs: 500 } });

    // While nobody can watch, an object disappears and history is compacted: the informer's
    // resourceVersion can no longer be resumed from, so the server must answer 410 Gone.
    const key = Buffer.from(`/registry/configmaps/${ns}/vanish`).toString("base64");
    const deleted = await etcd<{ deleted?: string; header: { revision: string } }>(cp.etcdUrl, "/v3/kv/deleterange", { key });
    assert.equal(deleted.deleted, "1");
    await etcd(cp.etcdUrl, "/v3/kv/compaction", { revision: deleted.header.revision, physical: true });

    await startApiServer();
    await eventually(() => events.includes("RESYNC"), "RESYNC after the relist");
    assert.deepEqual(events, ["DELETED vanish", "RESYNC"], "unchanged objects are not re-announced");
    assert.deepEqual(informer.list().map((o) => o.metadata?.name).sort(), ["keep-1", "keep-2"]);

    await putConfigMap(kubeConfig, ns, "after", { v: "1" });
    await eventually(() => informer.get(ns, "after") !== undefined, "the watch resumed after the relist");
    assert.deepEqual(events, ["DELETED vanish", "RESYNC", "ADDED after"]);

    // Created while the server was down, it syncs once the server is back (before or after "after" was written).
    await late.synced;
    await eventually(() => late.get(ns, "after") !== undefined, "the late informer sees the later object");
    assert.deepEqual(late.list().map((o) => o.metadata?.name).sort(), ["after", "keep-1", "keep-2"]);
    informer.stop();
    late.stop();
  });

  it("leader election: the leader steps down when it cannot renew, and leads again when the server is back", async () => {
    let leaderSignal: AbortSignal | undefined;
    let starts = 0;
    const electionStop = new AbortController();
    const election = runLeaderElection({
      kubeConfig,
      namespace: ns,
      name: "outage",
      identity: "only",
      leaseDurationSeconds: 3,
      renewDeadlineSeconds: 2,
      retryPeriodSeconds: 0.5,
      logger: testLogger,
      signal: electionStop.signal,
      onStartedLeading: (signal) => {
        starts++;
        leaderSignal = signal;
      },
    });
    try {
      await eventually(() => election.isLeader(), "leads");
      const firstTerm = leaderSignal;
      await stopApiServer();
      await eventually(() => firstTerm?.aborted === true, "leaderSignal aborted when renewal is impossible");
      assert.equal(election.isLeader(), false);
      await startApiServer();
      await eventually(() => election.isLeader(), "leads again");
      assert.equal(starts, 2);
      assert.equal(leaderSignal?.aborted, false);
      const lease = await kubeRequest<{ spec: { holderIdentity: string } }>(kubeConfig, {
        path: `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/outage`,
      });
      assert.equal(lease.spec.holderIdentity, "only");
    } finally {
      electionStop.abort();
      await election.done;
    }
  });
});
