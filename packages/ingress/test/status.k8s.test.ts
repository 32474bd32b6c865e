// Ingress status against a real API server: the leader publishes `--publish-service`'s address into the
// Ingresses of its class and clears it again when an Ingress stops being ours (class changed, legacy annotation
// removed, default class unset) or the Service loses its address — but never touches an address another
// controller wrote. This file starts a control plane of its own: marking an IngressClass default is
// cluster-wide, and must not reach the test files running in parallel on the shared one.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createEventRecorder, createKubeConfig, createLogger, kubeRequest } from "@bollard/core";
import type { KubeConfig } from "@kubernetes/client-node";
import { CONTROLLER_NAME, type IngressController, startIngressController } from "../src/index.ts";
import { eventually } from "./helpers/wait.ts";

type PrivateControlPlane = { kubeconfigPath: string; stop(): Promise<void> };
type IngressStatus = { metadata: { resourceVersion: string }; status?: { loadBalancer?: { ingress?: { ip?: string }[] } } };

const suffix = randomBytes(3).toString("hex");
const ns = `status-${suffix}`;
const ourClass = "bollard";

describe("Ingress status", () => {
  let cp: PrivateControlPlane;
  let kc: KubeConfig;
  let controller: IngressController;
  const stop = new AbortController();
  const api = <T = unknown>(method: "GET" | "POST" | "PATCH" | "DELETE", path: string, body?: unknown, options: { contentType?: string; fieldManager?: string } = {}) =>
    kubeRequest<T>(kc, {
      method,
      path,
      ...(body === undefined ? {} : { body }),
      ...(options.contentType ? { contentType: options.contentType } : {}),
      ...(options.fieldManager ? { query: { fieldManager: options.fieldManager } } : {}),
    });
  const merge = { contentType: "application/merge-patch+json" };
  const ingresses = `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`;
  const addressesOf = async (name: string) => ((await api<IngressStatus>("GET", `${ingresses}/${name}`)).status?.loadBalancer?.ingress ?? []).map((a) => a.ip);
  const expectAddresses = (name: string, ips: string[]) =>
    eventually(`${name} status ${JSON.stringify(ips)}`, async () => assert.deepEqual(await addressesOf(name), ips));
  const createIngress = (name: string, extra: { ingressClassName?: string; annotations?: Record<string, string> } = {}) =>
    api("POST", ingresses, {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
      spec: {
        ...(extra.ingressClassName ? { ingressClassName: extra.ingressClassName } : {}),
        rules: [{ host: `${name}.test`, http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "web", port: { number: 80 } } } }] } }],
      },
    });
  const setServiceAddress = (ip: string | null) =>
    api("PATCH", `/api/v1/namespaces/${ns}/services/lb/status`, { status: { loadBalancer: { ingress: ip === null ? null : [{ ip }] } } }, merge);
  const markDefault = (on: boolean) =>
    api("PATCH", `/apis/networking.k8s.io/v1/ingressclasses/${ourClass}`, { metadata: { annotations: { "ingressclass.kubernetes.io/is-default-class": on ? "true" : null } } }, merge);

  before(async () => {
    assert.ok(process.env.BOLLARD_KUBECONFIG, "run through `node test/run.ts`");
    // @bollard/lab is not a dependency of this package; load it at run time, as core's restart test does.
    const labModule = "@bollard/lab";
    const lab = (await import(labModule)) as { startControlPlane(): Promise<PrivateControlPlane> };
    cp = await lab.startControlPlane();
    kc = createKubeConfig({ kubeconfig: cp.kubeconfigPath });
    await api("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    for (const [name, controllerName] of [[ourClass, CONTROLLER_NAME], ["other", "example.com/other-controller"]]) {
      await api("POST", "/apis/networking.k8s.io/v1/ingressclasses", { apiVersion: "networking.k8s.io/v1", kind: "IngressClass", metadata: { name }, spec: { controller: controllerName } });
    }
    await api("POST", `/api/v1/namespaces/${ns}/services`, { apiVersion: "v1", kind: "Service", metadata: { name: "lb" }, spec: { type: "LoadBalancer", ports: [{ port: 80 }] } });
    await setServiceAddress("192.0.2.10");
    const logger = createLogger({ name: "status-test", level: "warn" });
    controller = startIngressController({
      kubeConfig: kc,
      logger,
      signal: stop.signal,
      ingressClass: ourClass,
      controllerName: CONTROLLER_NAME,
      watchNamespace: ns,
      publishService: { namespace: ns, name: "lb" },
      election: { namespace: ns, name: `bollard-ingress-${ourClass}`, identity: `status-test-${suffix}` },
      events: createEventRecorder({ kubeConfig: kc, component: CONTROLLER_NAME, logger }),
      apply() {},
      coalesceMs: 20,
    });
    await controller.ready;
  });

  after(async () => {
    stop.abort();
    await controller?.done;
    await cp?.stop();
  });

  test("published into Ingresses of ours: by class name, by legacy annotation, by default class", async () => {
    await createIngress("by-class", { ingressClassName: ourClass });
    await createIngress("by-annotation", { annotations: { "kubernetes.io/ingress.class": ourClass } });
    // Created while no class is default, so the API server's admission leaves it without a class.
    await createIngress("by-default");
    await markDefault(true);
    for (const name of ["by-class", "by-annotation", "by-default"]) await expectAddresses(name, ["192.0.2.10"]);
  });

  test("cleared when the Ingress stops being ours", async () => {
    await markDefault(false);
    await expectAddresses("by-default", []);
    await api("PATCH", `${ingresses}/by-annotation`, { metadata: { annotations: { "kubernetes.io/ingress.class": null } } }, merge);
    await expectAddresses("by-annotation", []);
    await api("PATCH", `${ingresses}/by-class`, { spec: { ingressClassName: "other" } }, merge);
    await expectAddresses("by-class", []);
  });

  test("an address another controller wrote on an Ingress that is not ours is never cleared", async () => {
    // The other controller publishes into what is now its Ingress, and into one that was never ours.
    await api("PATCH", `${ingresses}/by-class/status`, { status: { loadBalancer: { ingress: [{ ip: "198.51.100.7" }] } } }, { ...merge, fieldManager: "other-controller" });
    await createIngress("theirs", { ingressClassName: "other" });
    await api("PATCH", `${ingresses}/theirs/status`, { status: { loadBalancer: { ingress: [{ ip: "198.51.100.8" }] } } }, { ...merge, fieldManager: "other-controller" });
    // A probe of ours created after those writes: once its status is published, the status pass that saw the
    // other controller's writes (the Ingress watch delivers in order) has run, and a second publishing (after
    // the Service's address changed) proves that pass finished every write it meant to make.
    await createIngress("probe", { ingressClassName: ourClass });
    await expectAddresses("probe", ["192.0.2.10"]);
    await setServiceAddress("192.0.2.11");
    await expectAddresses("probe", ["192.0.2.11"]);
    assert.deepEqual(await addressesOf("by-class"), ["198.51.100.7"]);
    assert.deepEqual(await addressesOf("theirs"), ["198.51.100.8"]);
    // What stopped being ours stays cleared when the address changes.
    assert.deepEqual(await addressesOf("by-default"), []);
  });

  test("cleared when the published Service loses its address, and published again when it gets one", async () => {
    await setServiceAddress(null);
    await expectAddresses("probe", []);
    await setServiceAddress("192.0.2.12");
    await expectAddresses("probe", ["192.0.2.12"]);
    assert.deepEqual(await addressesOf("by-class"), ["198.51.100.7"]);
  });

  test("an Ingress that becomes ours again gets the address back", async () => {
    await markDefault(true);
    await expectAddresses("by-default", ["192.0.2.12"]);
    assert.equal(controller.isLeader(), true);
  });
});
