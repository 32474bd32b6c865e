// Kubernetes Service objects (plain JSON) → the allocator's ServiceRequest.
import type { IPFamily, Labels } from "@bollard/core";
import type { IPFamilyPolicy, ServicePort, ServiceRequest } from "../allocator/types.ts";

export const ANNOTATION_ADDRESS_POOL = "metallb.io/address-pool";
export const ANNOTATION_LOAD_BALANCER_IPS = "metallb.io/loadBalancerIPs";
export const ANNOTATION_ALLOW_SHARED_IP = "metallb.io/allow-shared-ip";
export const ANNOTATION_ALLOCATED_FROM_POOL = "metallb.io/ip-allocated-from-pool";
const LEGACY_PREFIX = "metallb.universe.tf/";

/** The fields of a Service this package reads; everything optional, as in a manifest on disk. */
export type ServiceObject = {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: {
    type?: string;
    loadBalancerClass?: string;
    loadBalancerIP?: string;
    ports?: { protocol?: string; port?: number }[];
    externalTrafficPolicy?: string;
    selector?: Record<string, string>;
    ipFamilies?: string[];
    ipFamilyPolicy?: string;
  };
  status?: { loadBalancer?: { ingress?: { ip?: string }[] } };
};

export function serviceKey(service: ServiceObject): string {
  return `${service.metadata?.namespace ?? "default"}/${service.metadata?.name ?? ""}`;
}

/**
 * Whether this controller handles the Service: type LoadBalancer and, without `lbClass`, no
 * spec.loadBalancerClass; with it, exactly that class.
 */
export function isHandledLoadBalancer(service: ServiceObject, lbClass: string | undefined): boolean {
  if (service.spec?.type !== "LoadBalancer") return false;
  const serviceClass = service.spec.loadBalancerClass ?? "";
  return lbClass === undefined ? serviceClass === "" : serviceClass === lbClass;
}

/** The addresses in status.loadBalancer.ingress. */
export function currentIPs(service: ServiceObject): string[] {
  return (service.status?.loadBalancer?.ingress ?? []).flatMap((ingress) => (typeof ingress.ip === "string" && ingress.ip !== "" ? [ingress.ip] : []));
}

/**
 * Builds the request; `deprecated` lists the legacy `metallb.universe.tf/*` annotations that were
 * read because their `metallb.io/*` spelling is absent.
 */
export function serviceRequest(service: ServiceObject, namespaceLabels: Labels): { request: ServiceRequest; deprecated: string[] } {
  const annotations = service.metadata?.annotations ?? {};
  const deprecated: string[] = [];
  const annotation = (name: string): string | undefined => {
    if (Object.hasOwn(annotations, name)) return annotations[name];
    const legacy = LEGACY_PREFIX + name.slice(name.indexOf("/") + 1);
    if (Object.hasOwn(annotations, legacy)) {
      deprecated.push(legacy);
      return annotations[legacy];
    }
    return undefined;
  };
  const spec = service.spec ?? {};
  const ports: ServicePort[] = (spec.ports ?? []).map((port) => ({ protocol: port.protocol ?? "TCP", port: port.port ?? 0 }));
  const ipFamilies: IPFamily[] = (spec.ipFamilies ?? []).flatMap((family): IPFamily[] =>
    family === "IPv4" ? [4] : family === "IPv6" ? [6] : [],
  );
  const policies: readonly string[] = ["SingleStack", "PreferDualStack", "RequireDualStack"];
  const ipFamilyPolicy = (policies.includes(spec.ipFamilyPolicy ?? "") ? spec.ipFamilyPolicy : "SingleStack") as IPFamilyPolicy;
  const request: ServiceRequest = {
    key: serviceKey(service),
    namespace: service.metadata?.namespace ?? "default",
    namespaceLabels,
    labels: service.metadata?.labels ?? {},
    loadBalancerIPs: annotation(ANNOTATION_LOAD_BALANCER_IPS),
    loadBalancerIP: spec.loadBalancerIP,
    pool: annotation(ANNOTATION_ADDRESS_POOL),
    sharingKey: annotation(ANNOTATION_ALLOW_SHARED_IP),
    ports,
    externalTrafficPolicy: spec.externalTrafficPolicy === "Local" ? "Local" : "Cluster",
    selector: spec.selector ?? {},
    ipFamilies,
    ipFamilyPolicy,
  };
  return { request, deprecated };
}
