// Service objects → ServiceRequest: which Services are handled, annotations and their legacy spellings.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "yaml";
import { isHandledLoadBalancer, type ServiceObject, serviceRequest } from "../src/index.ts";

const handledCases: [string, string, string | undefined, boolean][] = [
  ["LoadBalancer without class, no --lb-class", "spec: {type: LoadBalancer}", undefined, true],
  ["LoadBalancer with a class, no --lb-class", "spec: {type: LoadBalancer, loadBalancerClass: a/b}", undefined, false],
  ["LoadBalancer with the class asked for", "spec: {type: LoadBalancer, loadBalancerClass: a/b}", "a/b", true],
  ["LoadBalancer with another class", "spec: {type: LoadBalancer, loadBalancerClass: a/c}", "a/b", false],
  ["LoadBalancer without class, --lb-class given", "spec: {type: LoadBalancer}", "a/b", false],
  ["ClusterIP", "spec: {type: ClusterIP}", undefined, false],
  ["NodePort with the class", "spec: {type: NodePort, loadBalancerClass: a/b}", "a/b", false],
];

for (const [name, yaml, lbClass, expected] of handledCases) {
  test(`isHandledLoadBalancer: ${name}`, () => {
    assert.equal(isHandledLoadBalancer(parse(yaml) as ServiceObject, lbClass), expected);
  });
}

test("serviceRequest reads metallb.io annotations first and legacy spellings as a fallback, naming them", () => {
  const service = parse(`
metadata:
  name: web
  namespace: team
  labels: {app: web}
  annotations:
    metallb.io/address-pool: new-pool
    metallb.universe.tf/address-pool: old-pool
    metallb.universe.tf/allow-shared-ip: key
    metallb.universe.tf/loadBalancerIPs: 10.0.0.1
spec:
  type: LoadBalancer
  loadBalancerIP: 10.0.0.2
  ports: [{port: 53, protocol: UDP}, {port: 80}]
  externalTrafficPolicy: Local
  selector: {app: web}
  ipFamilies: [IPv6, IPv4]
  ipFamilyPolicy: PreferDualStack
`) as ServiceObject;
  const { request, deprecated } = serviceRequest(service, { env: "prod" });
  assert.deepEqual(request, {
    key: "team/web",
    namespace: "team",
    namespaceLabels: { env: "prod" },
    labels: { app: "web" },
    loadBalancerIPs: "10.0.0.1",
    loadBalancerIP: "10.0.0.2",
    pool: "new-pool",
    sharingKey: "key",
    ports: [
      { protocol: "UDP", port: 53 },
      { protocol: "TCP", port: 80 },
    ],
    externalTrafficPolicy: "Local",
    selector: { app: "web" },
    ipFamilies: [6, 4],
    ipFamilyPolicy: "PreferDualStack",
  });
  assert.deepEqual(deprecated.sort(), ["metallb.universe.tf/allow-shared-ip", "metallb.universe.tf/loadBalancerIPs"]);
});

test("serviceRequest defaults: namespace default, Cluster policy, SingleStack, no families", () => {
  const { request, deprecated } = serviceRequest({ metadata: { name: "x" }, spec: { type: "LoadBalancer" } }, {});
  assert.equal(request.key, "default/x");
  assert.equal(request.externalTrafficPolicy, "Cluster");
  assert.equal(request.ipFamilyPolicy, "SingleStack");
  assert.deepEqual(request.ipFamilies, []);
  assert.deepEqual(deprecated, []);
});
