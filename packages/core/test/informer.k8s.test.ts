import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  createInformer,
  createLogger,
  type InformerEvent,
  InformerStoppedError,
  kubeRequest,
  resources,
  resourceType,
  stripManagedFields,
  typedResource,
  waitForSync,
} from "../src/index.ts";
import {
  type ConfigMap,
  configMaps,
  createNamespace,
  deleteNamespace,
  eventually,
  putConfigMap,
  testKubeConfig,
  testLogger,
} from "./k8s-helpers.ts";

const configMapType = typedResource<ConfigMap>(resources.configMaps);

describe("informer against the API server", () => {
  let kubeConfig: KubeConfig;
  let ns: string;
  const stop = new AbortController();

  before(async () => {
    kubeConfig = testKubeConfig();
    ns = await createNamespace(kubeConfig, "core-informer");
  });
  after(async () => {
    stop.abort();
    await deleteNamespace(kubeConfig, ns);
  });

  it("lists what exists, then follows adds, modifications and deletes in order", async () => {
    await putConfigMap(kubeConfig, ns, "first", { v: "1" });
    await putConfigMap(kubeConfig, ns, "second", { v: "1" });
    const informer = createInformer<ConfigMap>({ kubeConfig, resource: configMapType, namespace: ns, logger: testLogger, signal: stop.signal });
    const events: string[] = [];
    informer.onChange((event) => events.push(`${event.type} ${event.object?.metadata?.name} ${event.object?.data?.v}`));
    assert.equal(informer.hasSynced(), false);
    await informer.synced;
    assert.equal(informer.hasSynced(), true);
    assert.deepEqual(informer.list().map((o) => o.metadata?.name).sort(), ["first", "second"]);
    assert.deepEqual(events.sort(), ["ADDED first 1", "ADDED second 1"]);
    events.length = 0;

    await putConfigMap(kubeConfig, ns, "third", { v: "1" });
    await kubeRequest(kubeConfig, {
      method: "PATCH",
      path: `${configMaps(ns)}/first`,
      contentType: "application/merge-patch+json",
      body: { data: { v: "2" } },
    });
    await kubeRequest(kubeConfig, { method: "DELETE", path: `${configMaps(ns)}/second` });
    await eventually(() => events.length === 3, "three watch events");
    assert.deepEqual(events, ["ADDED third 1", "MODIFIED first 2", "DELETED second 1"]);
    assert.equal(informer.get(ns, "first")?.data?.v, "2");
    assert.equal(informer.get(ns, "second"), undefined);
    assert.equal(informer.get(undefined, "first"), undefined, "namespaced objects are keyed namespace/name");
    assert.deepEqual(informer.list().map((o) => o.metadata?.name).sort(), ["first", "third"]);
    informer.stop();
  });

  it("keeps what `transform` makes of each listed and watched object (stripManagedFields: no managedFields)", async () => {
    await putConfigMap(kubeConfig, ns, "managed", { v: "1" });
    const raw = await kubeRequest<ConfigMap & { metadata: { managedFields?: unknown[] } }>(kubeConfig, { path: `${configMaps(ns)}/managed` });
    assert.ok((raw.metadata.managedFields?.length ?? 0) > 0, "the API server records managedFields, so stripping them can be seen");
    const informer = createInformer<ConfigMap>({ kubeConfig, resource: configMapType, namespace: ns, logger: testLogger, signal: stop.signal, transform: stripManagedFields });
    const watched: unknown[] = [];
    informer.onChange((event) => {
      if (event.object?.metadata?.name === "managed-later") watched.push(event.object);
    });
    await informer.synced;
    const listed = informer.get(ns, "managed") as ConfigMap & { metadata: Record<string, unknown> };
    assert.equal(listed.data?.v, "1");
    assert.equal("managedFields" in listed.metadata, false, "listed objects have none");
    assert.ok(listed.metadata.resourceVersion, "the resourceVersion is kept");
    await putConfigMap(kubeConfig, ns, "managed-later", { v: "1" });
    await eventually(() => informer.get(ns, "managed-later") !== undefined, "the watched object");
    const later = informer.get(ns, "managed-later") as ConfigMap & { metadata: Record<string, unknown> };
    assert.equal("managedFields" in later.metadata, false, "watched objects have none");
    assert.equal(watched.length, 1);
    assert.equal(watched[0], later, "listeners get the transformed object");
    informer.stop();
  });

  it("filters by label selector and reads every page of a paginated list", async () => {
    for (let i = 0; i < 7; i++) {
      await putConfigMap(kubeConfig, ns, `paged-${i}`, { i: String(i) }, { tier: i % 2 === 0 ? "even" : "odd" });
    }
    const firstPage = await kubeRequest<{ items: unknown[]; metadata: { continue?: string } }>(kubeConfig, {
      path: configMaps(ns),
      query: { labelSelector: "tier=even", limit: 2 },
    });
    assert.ok(firstPage.metadata.continue, "the server splits this list into pages, so the informer must follow them");
    const informer = createInformer<ConfigMap>({
      kubeConfig,
      resource: configMapType,
      namespace: ns,
      labelSelector: "tier=even",
      pageSize: 2,
      logger: testLogger,
      signal: stop.signal,
    });
    await informer.synced;
    assert.deepEqual(informer.list().map((o) => o.metadata?.name).sort(), ["paged-0", "paged-2", "paged-4", "paged-6"]);
    const seen: string[] = [];
    informer.onChange((e) => seen.push(`${e.type} ${e.object?.metadata?.name}`));
    await putConfigMap(kubeConfig, ns, "paged-odd-late", {}, { tier: "odd" });
    await putConfigMap(kubeConfig, ns, "paged-even-late", {}, { tier: "even" });
    await eventually(() => seen.length > 0, "an event for the matching object");
    assert.deepEqual(seen, ["ADDED paged-even-late"]);
    informer.stop();
  });

  it("filters by field selector on a cluster-scoped collection", async () => {
    const informer = createInformer({
      kubeConfig,
      resource: resources.namespaces,
      fieldSelector: `metadata.name=${ns}`,
      logger: testLogger,
      signal: stop.signal,
    });
    await informer.synced;
    assert.deepEqual(informer.list().map((o) => o.metadata?.name), [ns]);
    assert.ok(informer.get(undefined, ns), "cluster-scoped objects are keyed by name");
    informer.stop();
  });

  it("delivers to every listener, survives one that throws, and honours unsubscribe", async () => {
    const informer = createInformer<ConfigMap>({ kubeConfig, resource: configMapType, namespace: ns, labelSelector: "listeners=yes", logger: testLogger, signal: stop.signal });
    await informer.synced;
    const a: InformerEvent<ConfigMap>[] = [];
    const b: InformerEvent<ConfigMap>[] = [];
    informer.onChange(() => {
      throw new Error("listener bug");
    });
    informer.onChange((e) => a.push(e));
    const unsubscribe = informer.onChange((e) => b.push(e));
    await putConfigMap(kubeConfig, ns, "listen-1", {}, { listeners: "yes" });
    await eventually(() => a.length === 1 && b.length === 1, "both listeners called");
    unsubscribe();
    await putConfigMap(kubeConfig, ns, "listen-2", {}, { listeners: "yes" });
    await eventually(() => a.length === 2, "the remaining listener called again");
    assert.equal(b.length, 1);
    assert.equal(informer.get(ns, "listen-2")?.metadata?.name, "listen-2", "a throwing listener does not stop the watch");
    informer.stop();
  });

  it("waits for several informers with waitForSync", async () => {
    const one = createInformer({ kubeConfig, resource: configMapType, namespace: ns, logger: testLogger, signal: stop.signal });
    const two = createInformer({ kubeConfig, resource: resources.secrets, namespace: ns, logger: testLogger, signal: stop.signal });
    await waitForSync(one, two);
    assert.ok(one.hasSynced() && two.hasSynced());
    one.stop();
    two.stop();
  });

  it("retries a collection that does not exist yet with growing, capped delays, and rejects `synced` when stopped first", async () => {
    const controller = new AbortController();
    const stream = new PassThrough();
    const retries: Array<{ attempt: number; retryInMs: number; err: { message: string } }> = [];
    stream.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line) retries.push(JSON.parse(line));
    });
    const informer = createInformer({
      kubeConfig,
      resource: resourceType("example.invalid", "v1", "things", true), namespace: "x",
      logger: createLogger({ name: "retry-test", level: "warn", destination: stream }),
      signal: controller.signal,
      backoff: { initialMs: 10, maxMs: 40 },
    });
    await eventually(() => retries.length >= 6, "six failed lists");
    assert.equal(informer.hasSynced(), false);
    assert.match(retries[0]?.err.message ?? "", /404/);
    assert.deepEqual(retries.slice(0, 6).map((r) => r.attempt), [1, 2, 3, 4, 5, 6]);
    // Steps 10, 20, 40, 40, …; each delay lies in the upper half of its step.
    const steps = [10, 20, 40, 40, 40, 40];
    retries.slice(0, 6).forEach((r, i) => {
      const step = steps[i] as number;
      assert.ok(r.retryInMs >= Math.floor(step / 2) && r.retryInMs <= step, `attempt ${r.attempt}: ${r.retryInMs} ms within step ${step}`);
    });
    controller.abort();
    await assert.rejects(informer.synced, InformerStoppedError);
  });
});
