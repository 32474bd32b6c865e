// `bollard explain allocation`, as a pure function over objects read from manifests.
import { planAllocations, type ServiceState } from "../allocator/plan.ts";
import { type ConfigError, loadPools } from "@bollard/core";
import { currentIPs, isHandledLoadBalancer, type ServiceObject, serviceRequest } from "../service/request.ts";

export type ExplainedService = {
  namespace: string;
  name: string;
  ips: string[];
  pool?: string;
  /** Why its status addresses were dropped. */
  cleared?: string;
  error?: string;
};

type ManifestObject = { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; labels?: unknown } };

function isObject(value: unknown): value is ManifestObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Which address each LoadBalancer Service would get. Takes IPAddressPool, Service and Namespace
 * objects (others are ignored; pools of any namespace count). Services whose status holds
 * addresses are restored first, then the others are allocated in input order.
 */
export function explainAllocation(objects: readonly unknown[]): { services: ExplainedService[] } | { errors: ConfigError[] } {
  const items = objects.filter(isObject);
  const poolObjects = items.filter((o) => o.kind === "IPAddressPool" && typeof o.apiVersion === "string" && o.apiVersion.startsWith("metallb.io/"));
  const config = loadPools(poolObjects);
  if ("errors" in config) return config;
  const namespaceLabels = new Map<string, Record<string, string>>();
  for (const o of items) {
    if (o.kind === "Namespace" && typeof o.metadata?.name === "string") {
      namespaceLabels.set(o.metadata.name, isObject(o.metadata.labels) ? (o.metadata.labels as Record<string, string>) : {});
    }
  }
  const services = items.filter((o) => o.kind === "Service" && o.apiVersion === "v1") as ServiceObject[];
  const loadBalancers = services.filter((service) => service.spec?.type === "LoadBalancer");
  const handled = loadBalancers.filter((service) => isHandledLoadBalancer(service, undefined));
  const states: ServiceState[] = handled.map((service) => {
    const namespace = service.metadata?.namespace ?? "default";
    return { request: serviceRequest(service, namespaceLabels.get(namespace) ?? {}).request, currentIPs: currentIPs(service) };
  });
  const outcomes = new Map(planAllocations(config.pools, states).outcomes.map((outcome) => [outcome.key, outcome]));
  return {
    services: loadBalancers.map((service) => {
      const namespace = service.metadata?.namespace ?? "default";
      const name = service.metadata?.name ?? "";
      const lbClass = service.spec?.loadBalancerClass ?? "";
      if (lbClass !== "") {
        return { namespace, name, ips: [], error: `spec.loadBalancerClass is "${lbClass}": left to the controller of that class` };
      }
      const outcome = outcomes.get(`${namespace}/${name}`);
      const explained: ExplainedService = { namespace, name, ips: outcome?.ips ?? [] };
      if (outcome?.pool !== undefined) explained.pool = outcome.pool;
      if (outcome?.cleared !== undefined) explained.cleared = outcome.cleared;
      if (outcome?.failure !== undefined) explained.error = `${outcome.failure.reason}: ${outcome.failure.message}`;
      return explained;
    }),
  };
}
