// IPv6 and dual-stack Services through the real API server and `bollard controller`. The test control plane
// serves an IPv4 and an IPv6 Service CIDR, as a dual-stack cluster does, so the API server accepts these Services
// (and gives them cluster IPs of their families) before the controller sees them; until it did, these cases
// were tested only offline.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { kubeRequest } from "@bollard/core";
import { type ControllerProcess, ips, kube, type ServiceJSON, startController, suffix, type TestNamespace, testNamespace, waitFor } from "./k8s-helpers.ts";

const config = kube();

type DualServiceJSON = ServiceJSON & { spec: { ipFamilies?: string[]; ipFamilyPolicy?: string; clusterIPs?: string[] } };

describe("dual-stack Services through the API server and the controller", () => {
  let ns: TestNamespace;
  let controller: ControllerProcess;
  const lbClass = `bollard.test/${suffix()}`;

  before(async () => {
    ns = await testNamespace(config, "dual-stack");
    await ns.createPool("dual", { addresses: ["10.93.0.0/28", "fd00:93::/124"] });
    await ns.createPool("v4-only", { addresses: ["10.93.1.0/28"], autoAssign: false });
    await ns.createPool("v6-only", { addresses: ["fd00:93:1::/124"], autoAssign: false });
    controller = startController({ namespace: ns.namespace, lbClass });
  });

  after(async () => {
    assert.equal(await controller?.stop(), 0, "the controller exits 0 on SIGTERM");
    await ns?.delete();
  });

  const create = (name: string, spec: { ipFamilyPolicy?: string; ipFamilies?: string[] }, annotations: Record<string, string> = {}) =>
    kubeRequest<DualServiceJSON>(config, {
      method: "POST",
      path: `/api/v1/namespaces/${ns.namespace}/services`,
      body: {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, annotations },
        spec: { type: "LoadBalancer", loadBalancerClass: lbClass, ports: [{ port: 80 }], selector: { app: name }, ...spec },
      },
    });
  const allocated = (name: string, count: number) =>
    waitFor(`${name} to get ${count} address(es)`, async () => {
      const service = await ns.getService(name);
      return ips(service).length >= count ? ips(service) : undefined;
    });
  const failed = (name: string) =>
    waitFor(`AllocationFailed on ${name}`, async () => (await ns.events()).find((e) => e.regarding.name === name && e.reason === "AllocationFailed"));

  test("SingleStack IPv6: the API server gives an IPv6 cluster IP, the controller an IPv6 address", async () => {
    const created = await create("v6", { ipFamilyPolicy: "SingleStack", ipFamilies: ["IPv6"] });
    assert.deepEqual(created.spec.ipFamilies, ["IPv6"]);
    assert.match(created.spec.clusterIPs?.[0] ?? "", /^fd00:10:96::/);
    assert.deepEqual(await allocated("v6", 1), ["fd00:93::"]);
  });

  test("PreferDualStack without ipFamilies: two cluster IPs, one address of each family, IPv4 first", async () => {
    const created = await create("prefer", { ipFamilyPolicy: "PreferDualStack" });
    assert.deepEqual(created.spec.ipFamilies, ["IPv4", "IPv6"]);
    assert.equal(created.spec.clusterIPs?.length, 2);
    const got = await allocated("prefer", 2);
    assert.match(got[0] as string, /^10\.93\.0\./);
    assert.match(got[1] as string, /^fd00:93::/);
  });

  test("RequireDualStack with IPv6 first in spec.ipFamilies: still written IPv4 first, then IPv6 (as MetalLB)", async () => {
    const created = await create("require", { ipFamilyPolicy: "RequireDualStack", ipFamilies: ["IPv6", "IPv4"] });
    assert.deepEqual(created.spec.ipFamilies, ["IPv6", "IPv4"]);
    assert.match(created.spec.clusterIPs?.[0] ?? "", /:/, "the API server keeps the Service's own order for cluster IPs");
    const got = await allocated("require", 2);
    assert.match(got[0] as string, /^10\.93\.0\./);
    assert.match(got[1] as string, /^fd00:93::/);
  });

  test("PreferDualStack from a pool of one family: that family only", async () => {
    await create("prefer-v6-pool", { ipFamilyPolicy: "PreferDualStack" }, { "metallb.io/address-pool": "v6-only" });
    assert.deepEqual(await allocated("prefer-v6-pool", 1), ["fd00:93:1::"]);
  });

  test("RequireDualStack from a pool of one family: refused, and the Service keeps no address", async () => {
    await create("require-v4-pool", { ipFamilyPolicy: "RequireDualStack" }, { "metallb.io/address-pool": "v4-only" });
    const event = await failed("require-v4-pool");
    assert.match((event as { note: string }).note, /IPv6/);
    assert.deepEqual(ips(await ns.getService("require-v4-pool")), []);
  });

  test("an IPv6 address asked for by a SingleStack IPv4 Service: refused", async () => {
    await create("v4-asks-v6", { ipFamilyPolicy: "SingleStack", ipFamilies: ["IPv4"] }, { "metallb.io/loadBalancerIPs": "fd00:93::5" });
    await failed("v4-asks-v6");
    assert.deepEqual(ips(await ns.getService("v4-asks-v6")), []);
  });
});
