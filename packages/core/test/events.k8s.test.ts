import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { KubeConfig } from "@kubernetes/client-node";
import { createEventRecorder, createLogger, kubeRequest } from "../src/index.ts";
import { createNamespace, deleteNamespace, putConfigMap, testKubeConfig, testLogger } from "./k8s-helpers.ts";

type Event = {
  metadata: { name: string; namespace: string };
  type: string;
  reason: string;
  action: string;
  note: string;
  reportingController: string;
  reportingInstance: string;
  regarding: { kind: string; name: string; namespace?: string; uid?: string; apiVersion: string };
  series?: { count: number; lastObservedTime: string };
};

describe("event recorder against the API server", () => {
  let kubeConfig: KubeConfig;
  let ns: string;
  const listEvents = async (namespace: string) =>
    (await kubeRequest<{ items: Event[] }>(kubeConfig, { path: `/apis/events.k8s.io/v1/namespaces/${namespace}/events` })).items;

  before(async () => {
    kubeConfig = testKubeConfig();
    ns = await createNamespace(kubeConfig, "core-events");
  });
  after(() => deleteNamespace(kubeConfig, ns));

  it("writes an events.k8s.io/v1 Event about the object", async () => {
    const target = await putConfigMap(kubeConfig, ns, "target", {});
    const recorder = createEventRecorder({ kubeConfig, component: "bollard.io/test", host: "node-a", logger: testLogger });
    const object = { kind: "ConfigMap", apiVersion: "v1", namespace: ns, name: "target", uid: (target as { metadata: { uid: string } }).metadata.uid };
    recorder.record(object, "Normal", "IPAllocated", "Assigned IP 192.0.2.10");
    await recorder.flush();
    const events = await listEvents(ns);
    assert.equal(events.length, 1);
    const [event] = events as [Event];
    assert.equal(event.type, "Normal");
    assert.equal(event.reason, "IPAllocated");
    assert.equal(event.action, "IPAllocated");
    assert.equal(event.note, "Assigned IP 192.0.2.10");
    assert.equal(event.reportingController, "bollard.io/test");
    assert.equal(event.reportingInstance, "node-a");
    assert.deepEqual(event.regarding, { kind: "ConfigMap", apiVersion: "v1", namespace: ns, name: "target", uid: object.uid });
    assert.equal(event.series, undefined);
  });

  it("holds one object to 25 new Events (client-go's spam filter) while other objects still get theirs", async () => {
    const recorder = createEventRecorder({ kubeConfig, component: "bollard.io/test", host: "node-a", logger: testLogger, writesPerSecond: 1000, burst: 1000 });
    const noisy = { kind: "Service", apiVersion: "v1", namespace: ns, name: "noisy" };
    for (let i = 0; i < 40; i++) recorder.record(noisy, "Warning", "AllocationFailed", `attempt ${i}`);
    recorder.record({ kind: "Service", apiVersion: "v1", namespace: ns, name: "quiet" }, "Warning", "AllocationFailed", "attempt 0");
    await recorder.flush(60_000);
    const events = await listEvents(ns);
    const notes = events.filter((e) => e.regarding.name === "noisy").map((e) => e.note);
    assert.equal(notes.length, 25);
    assert.deepEqual(new Set(notes), new Set(Array.from({ length: 25 }, (_, i) => `attempt ${i}`)), "the first 25, in order of recording");
    assert.equal(events.filter((e) => e.regarding.name === "quiet").length, 1);
  });

  it("folds repeats into one Event's series instead of spamming, and keeps distinct messages apart", async () => {
    const recorder = createEventRecorder({ kubeConfig, component: "bollard.io/test", host: "node-a", logger: testLogger });
    const object = { kind: "Service", apiVersion: "v1", namespace: ns, name: "web" };
    for (let i = 0; i < 25; i++) recorder.record(object, "Warning", "AllocationFailed", "pool default is exhausted");
    recorder.record(object, "Warning", "AllocationFailed", "pool other is exhausted");
    await recorder.flush();
    const events = (await listEvents(ns)).filter((e) => e.regarding.name === "web");
    assert.equal(events.length, 2);
    const repeated = events.find((e) => e.note === "pool default is exhausted");
    assert.equal(repeated?.series?.count, 25);
    assert.ok(repeated?.series?.lastObservedTime);
    assert.equal(events.find((e) => e.note === "pool other is exhausted")?.series, undefined);
  });

  it("starts a new Event once the series window has passed", async () => {
    const recorder = createEventRecorder({ kubeConfig, component: "bollard.io/test", logger: testLogger, seriesWindowMs: 1 });
    const object = { kind: "Service", apiVersion: "v1", namespace: ns, name: "windowed" };
    recorder.record(object, "Normal", "Again", "same words");
    await new Promise((resolve) => setTimeout(resolve, 5));
    recorder.record(object, "Normal", "Again", "same words");
    await recorder.flush();
    assert.equal((await listEvents(ns)).filter((e) => e.regarding.name === "windowed").length, 2);
  });

  it("puts events about cluster-scoped objects in the default namespace", async () => {
    const recorder = createEventRecorder({ kubeConfig, component: "bollard.io/test", logger: testLogger });
    const node = `node-${ns}`;
    recorder.record({ kind: "Node", apiVersion: "v1", name: node }, "Normal", "Announcing", "announcing 192.0.2.10");
    await recorder.flush();
    const events = (await listEvents("default")).filter((e) => e.regarding.name === node);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.regarding.namespace, undefined);
  });

  it("never throws into the caller: a refused write is logged", async () => {
    const stream = new PassThrough();
    let logged = "";
    stream.on("data", (chunk: Buffer) => {
      logged += chunk.toString();
    });
    const logger = createLogger({ name: "events-test", level: "warn", destination: stream });
    const recorder = createEventRecorder({ kubeConfig, component: "bollard.io/test", logger });
    const missing = `absent-${ns}`;
    assert.doesNotThrow(() => recorder.record({ kind: "Service", apiVersion: "v1", namespace: missing, name: "x" }, "Warning", "R", "m"));
    await recorder.flush();
    assert.match(logged, /could not write event/);
    assert.match(logged, /404/);
  });
});
