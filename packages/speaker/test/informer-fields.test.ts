// What the speaker's informers keep of a Service, an EndpointSlice and a Node (src/election/objects.ts): exactly
// the fields the election and BGP read, from objects as the API server sends them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { endpointSliceFields, nodeFields, serviceFields } from "../src/election/objects.ts";

const managedFields = [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:spec": {} } }];
const lastApplied = { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ spec: { ports: [{ port: 80 }] } }) };

describe("serviceFields", () => {
  const cases: Array<{ name: string; input: Record<string, unknown>; kept: unknown }> = [
    {
      name: "a LoadBalancer Service with an address",
      input: {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web", namespace: "shop", uid: "u-1", resourceVersion: "7", generation: 1, creationTimestamp: "2026-01-01T00:00:00Z", labels: { app: "web" }, annotations: lastApplied, managedFields },
        spec: {
          type: "LoadBalancer",
          externalTrafficPolicy: "Local",
          loadBalancerClass: "bollard.io/lb",
          ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 31000, protocol: "TCP" }],
          selector: { app: "web" },
          clusterIP: "10.96.0.10",
          clusterIPs: ["10.96.0.10"],
          ipFamilies: ["IPv4"],
          ipFamilyPolicy: "SingleStack",
          sessionAffinity: "None",
        },
        status: { loadBalancer: { ingress: [{ ip: "192.0.2.1", ipMode: "VIP" }, { hostname: "lb.example" }] } },
      },
      kept: {
        metadata: { name: "web", namespace: "shop", uid: "u-1", resourceVersion: "7", labels: { app: "web" } },
        spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", loadBalancerClass: "bollard.io/lb" },
        status: { loadBalancer: { ingress: [{ ip: "192.0.2.1" }, { hostname: "lb.example" }] } },
      },
    },
    {
      name: "a ClusterIP Service without labels or status",
      input: { metadata: { name: "db", namespace: "shop", resourceVersion: "8" }, spec: { type: "ClusterIP", clusterIP: "10.96.0.11" }, status: { loadBalancer: {} } },
      kept: { metadata: { name: "db", namespace: "shop", resourceVersion: "8" }, spec: { type: "ClusterIP" } },
    },
    {
      name: "a class set to null stays null",
      input: { metadata: { name: "x" }, spec: { type: "LoadBalancer", loadBalancerClass: null } },
      kept: { metadata: { name: "x" }, spec: { type: "LoadBalancer", loadBalancerClass: null } },
    },
  ];
  for (const { name, input, kept } of cases) {
    it(name, () => assert.deepEqual(serviceFields(input as never), kept));
  }
});

describe("endpointSliceFields", () => {
  const cases: Array<{ name: string; input: Record<string, unknown>; kept: unknown }> = [
    {
      name: "a slice with ready, terminating and node-less endpoints",
      input: {
        addressType: "IPv4",
        metadata: {
          name: "web-abc12",
          namespace: "shop",
          uid: "u-2",
          resourceVersion: "9",
          labels: { "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" },
          ownerReferences: [{ kind: "Service", name: "web", uid: "u-1" }],
          managedFields,
        },
        endpoints: [
          { addresses: ["10.0.0.1"], conditions: { ready: true, serving: true, terminating: false }, nodeName: "n1", targetRef: { kind: "Pod", name: "web-1", namespace: "shop", uid: "p1" }, zone: "a" },
          { addresses: ["10.0.0.2"], conditions: { ready: false, serving: true, terminating: true }, nodeName: "n2" },
          { addresses: ["10.0.0.3"], conditions: {} },
        ],
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      },
      kept: {
        metadata: { name: "web-abc12", namespace: "shop", uid: "u-2", resourceVersion: "9", labels: { "kubernetes.io/service-name": "web" } },
        endpoints: [
          { conditions: { ready: true, serving: true, terminating: false }, nodeName: "n1" },
          { conditions: { ready: false, serving: true, terminating: true }, nodeName: "n2" },
          { conditions: {} },
        ],
      },
    },
    {
      name: "a slice of no Service, with no endpoints",
      input: { metadata: { name: "orphan", namespace: "shop", labels: { other: "x" } }, endpoints: null },
      kept: { metadata: { name: "orphan", namespace: "shop" } },
    },
  ];
  for (const { name, input, kept } of cases) {
    it(name, () => assert.deepEqual(endpointSliceFields(input as never), kept));
  }
});

describe("nodeFields", () => {
  it("keeps a kubelet's Node's labels, addresses and conditions' type and status", () => {
    const node = {
      metadata: { name: "n1", uid: "u-3", resourceVersion: "10", labels: { "kubernetes.io/hostname": "n1" }, annotations: { "node.alpha.kubernetes.io/ttl": "0" }, managedFields },
      spec: { podCIDR: "10.244.1.0/24" },
      status: {
        addresses: [{ type: "InternalIP", address: "192.0.2.10" }],
        conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "ready", lastHeartbeatTime: "2026-01-01T00:00:00Z" }],
        capacity: { cpu: "4" },
        images: [{ names: ["registry.example/a@sha256:00"], sizeBytes: 1 }],
        nodeInfo: { kubeletVersion: "v1.36.3" },
      },
    };
    assert.deepEqual(nodeFields(node as never), {
      metadata: { name: "n1", uid: "u-3", resourceVersion: "10", labels: { "kubernetes.io/hostname": "n1" } },
      status: { addresses: [{ type: "InternalIP", address: "192.0.2.10" }], conditions: [{ type: "Ready", status: "True" }] },
    });
  });
});
