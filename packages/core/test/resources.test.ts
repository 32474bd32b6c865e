// resourcePath: the one place API paths are built. Every name given is URL-encoded; a path a type cannot have is a
// ResourcePathError, never a request to the wrong place.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ResourceLocation, ResourcePathError, type ResourceType, resourcePath, resources, resourceType } from "../src/index.ts";

const paths: { type: ResourceType; where?: ResourceLocation; path: string }[] = [
  { type: resources.services, path: "/api/v1/services" },
  { type: resources.services, where: { namespace: "default" }, path: "/api/v1/namespaces/default/services" },
  { type: resources.services, where: { namespace: "default", name: "web" }, path: "/api/v1/namespaces/default/services/web" },
  { type: resources.services, where: { namespace: "default", name: "web", subresource: "status" }, path: "/api/v1/namespaces/default/services/web/status" },
  { type: resources.nodes, where: { name: "node1", subresource: "status" }, path: "/api/v1/nodes/node1/status" },
  { type: resources.ingressClasses, path: "/apis/networking.k8s.io/v1/ingressclasses" },
  { type: resources.ipAddressPools, where: { namespace: "metallb-system", name: "a" }, path: "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools/a" },
  { type: resources.tokenReviews, path: "/apis/authentication.k8s.io/v1/tokenreviews" },
  { type: resources.leases, where: { namespace: "ns", name: "bollard-controller" }, path: "/apis/coordination.k8s.io/v1/namespaces/ns/leases/bollard-controller" },
  // Names are data: anything that is not a plain segment is encoded, so it can never change the path's shape.
  { type: resources.secrets, where: { namespace: "a/b", name: "../x?y#z" }, path: "/api/v1/namespaces/a%2Fb/secrets/..%2Fx%3Fy%23z" },
  { type: resources.serviceL2Statuses, where: { namespace: "ns", name: "l2-node 1" }, path: "/apis/metallb.io/v1beta1/namespaces/ns/servicel2statuses/l2-node%201" },
  { type: resourceType("example.io", "v1alpha1", "widgets", true), where: { namespace: "x" }, path: "/apis/example.io/v1alpha1/namespaces/x/widgets" },
];

const refused: { type: ResourceType; where: ResourceLocation; message: RegExp }[] = [
  { type: resources.nodes, where: { namespace: "default" }, message: /v1 nodes is cluster-scoped: no namespace "default"/ },
  { type: resources.services, where: { name: "web" }, message: /v1 services "web" needs a namespace/ },
  { type: resources.services, where: { namespace: "" }, message: /an empty namespace, name or subresource/ },
  { type: resources.services, where: { namespace: "ns", name: "" }, message: /an empty namespace, name or subresource/ },
  { type: resources.ingresses, where: { namespace: "ns", subresource: "status" }, message: /networking.k8s.io\/v1 ingresses: subresource "status" needs a name/ },
];

describe("resourcePath", () => {
  for (const c of paths) {
    it(`${c.type.plural} ${JSON.stringify(c.where ?? {})} → ${c.path}`, () => {
      assert.equal(resourcePath(c.type, c.where), c.path);
    });
  }
  for (const c of refused) {
    it(`refuses ${c.type.plural} ${JSON.stringify(c.where)}`, () => {
      assert.throws(() => resourcePath(c.type, c.where), (error: unknown) => error instanceof ResourcePathError && c.message.test(error.message));
    });
  }
});
