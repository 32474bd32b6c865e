// The lab's stand-ins for kube-proxy and the EndpointSlice controller are pure: objects in, rules/slices out.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileNatRules, renderNftRuleset, type ServiceLike, type EndpointSliceLike } from "../src/kube-proxy/rules.ts";
import { desiredEndpointSlices, type LabPod } from "../src/endpoints/slices.ts";

const svc = (over: Partial<ServiceLike["spec"]> = {}, ips = ["10.251.1.200"]): ServiceLike => ({
  metadata: { name: "web", namespace: "default" },
  spec: { type: "LoadBalancer", ports: [{ name: "http", port: 80 }], ...over },
  status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
});
const slice = (eps: { ip: string; node: string; ready?: boolean }[], family = "IPv4"): EndpointSliceLike & { metadata: { namespace: string } } => ({
  metadata: { namespace: "default", labels: { "kubernetes.io/service-name": "web" } },
  addressType: family,
  endpoints: eps.map((e) => ({ addresses: [e.ip], nodeName: e.node, conditions: { ready: e.ready ?? true } })),
  ports: [{ name: "http", port: 8000 }],
});

describe("compileNatRules", () => {
  const cases: { name: string; services: ServiceLike[]; slices: EndpointSliceLike[]; node: string; want: string[] }[] = [
    {
      name: "prefers the node's own endpoint",
      services: [svc()],
      slices: [slice([{ ip: "10.251.1.11", node: "node1" }, { ip: "10.251.1.12", node: "node2" }])],
      node: "node2",
      want: ["10.251.1.200:80 -> 10.251.1.12:8000 local"],
    },
    {
      name: "falls back to another node's endpoint with Cluster policy",
      services: [svc()],
      slices: [slice([{ ip: "10.251.1.11", node: "node1" }])],
      node: "node2",
      want: ["10.251.1.200:80 -> 10.251.1.11:8000 remote"],
    },
    {
      name: "drops traffic without a local endpoint with Local policy",
      services: [svc({ externalTrafficPolicy: "Local" })],
      slices: [slice([{ ip: "10.251.1.11", node: "node1" }])],
      node: "node2",
      want: [],
    },
    {
      name: "skips endpoints that are not ready",
      services: [svc()],
      slices: [slice([{ ip: "10.251.1.11", node: "node1", ready: false }, { ip: "10.251.1.12", node: "node2" }])],
      node: "node1",
      want: ["10.251.1.200:80 -> 10.251.1.12:8000 remote"],
    },
    {
      name: "ignores Services that are not LoadBalancers or have no address yet",
      services: [svc({ type: "ClusterIP" }), svc({}, [])],
      slices: [slice([{ ip: "10.251.1.11", node: "node1" }])],
      node: "node1",
      want: [],
    },
    {
      name: "ignores slices of a same-named Service in another namespace",
      services: [svc()],
      slices: [{ ...slice([{ ip: "10.251.1.11", node: "node1" }]), metadata: { namespace: "other", labels: { "kubernetes.io/service-name": "web" } } }],
      node: "node1",
      want: [],
    },
    {
      name: "matches IPv6 addresses with IPv6 slices",
      services: [svc({}, ["fd00:b011:1::200"])],
      slices: [slice([{ ip: "10.251.1.11", node: "node1" }]), slice([{ ip: "fd00:b011:1::b", node: "node1" }], "IPv6")],
      node: "node1",
      want: ["fd00:b011:1::200:80 -> fd00:b011:1::b:8000 local"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = compileNatRules(c.services, c.slices, c.node).map(
        (r) => `${r.vip}:${r.port} -> ${r.target}:${r.targetPort} ${r.local ? "local" : "remote"}`,
      );
      assert.deepEqual(got, c.want);
    });
  }

  it("renders one atomic nft transaction with masquerade for forwarded traffic", () => {
    const text = renderNftRuleset(compileNatRules([svc({}, ["10.251.1.200", "fd00::200"])], [slice([{ ip: "10.251.1.11", node: "n" }])], "n"), "eth0");
    assert.match(text, /^table inet bollard_lab_proxy\ndelete table inet bollard_lab_proxy\n/);
    assert.match(text, /ip daddr 10\.251\.1\.200 tcp dport 80 dnat ip to 10\.251\.1\.11:8000/);
    assert.match(text, /ct status dnat oifname "eth0" masquerade/);
    assert.doesNotMatch(text, /fd00::200/, "no IPv6 rule without an IPv6 endpoint");
  });
});

describe("desiredEndpointSlices", () => {
  const pod = (name: string, node: string, ip: string, labels: Record<string, string>, ready = true): LabPod => ({
    name,
    namespace: "default",
    nodeName: node,
    ip,
    labels,
    ports: [{ name: "http", port: 8000 }],
    ready,
  });
  const service = (selector: Record<string, string> | undefined, targetPort: number | string = "http") => ({
    metadata: { name: "web", namespace: "default", uid: "u1" },
    spec: { selector, ports: [{ name: "web", port: 80, targetPort }] },
  });

  it("selects pods by label and resolves named target ports", () => {
    const slices = desiredEndpointSlices(
      [service({ app: "demo" })],
      [pod("b", "node2", "10.0.0.12", { app: "demo" }), pod("a", "node1", "10.0.0.11", { app: "demo" }), pod("c", "node1", "10.0.0.13", { app: "other" })],
    );
    assert.equal(slices.length, 1);
    const s = slices[0]!;
    assert.equal(s.metadata.labels["kubernetes.io/service-name"], "web");
    assert.deepEqual(s.endpoints.map((e) => [e.addresses[0], e.nodeName]), [["10.0.0.11", "node1"], ["10.0.0.12", "node2"]]);
    assert.deepEqual(s.ports, [{ name: "web", port: 8000, protocol: "TCP" }]);
  });

  it("writes readiness as the EndpointSlice controller would", () => {
    const [s] = desiredEndpointSlices([service({ app: "demo" }, 9000)], [pod("a", "node1", "10.0.0.11", { app: "demo" }, false)]);
    assert.deepEqual(s!.endpoints[0]!.conditions, { ready: false, serving: false, terminating: false });
    assert.deepEqual(s!.ports, [{ name: "web", port: 9000, protocol: "TCP" }]);
  });

  it("writes nothing for Services without a selector", () => {
    assert.deepEqual(desiredEndpointSlices([service(undefined)], [pod("a", "n", "10.0.0.1", {})]), []);
  });
});
