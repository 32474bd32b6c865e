import type { Ingress, LoadBalancerIngress, ObjectRef, Service } from "../model/objects.ts";
import { refKey, refOf } from "../model/objects.ts";

/** `--publish-service ns/name`: the Service whose load-balancer addresses are our Ingresses' addresses. */
export function loadBalancerAddresses(service: Service | undefined): LoadBalancerIngress[] {
  return (service?.status?.loadBalancer?.ingress ?? []).map((lb) => ({ ...(lb.ip ? { ip: lb.ip } : {}), ...(lb.hostname ? { hostname: lb.hostname } : {}) }));
}

export interface StatusUpdate {
  ingress: ObjectRef;
  addresses: LoadBalancerIngress[];
}

/** The Ingresses of ours whose `status.loadBalancer.ingress` differs from the published addresses. Pure. */
export function statusUpdates(ingresses: readonly Ingress[], ours: readonly ObjectRef[], addresses: readonly LoadBalancerIngress[]): StatusUpdate[] {
  const wanted = new Set(ours.map(refKey));
  const canonical = (list: readonly LoadBalancerIngress[]) =>
    JSON.stringify(
      list
        .map((a) => [a.ip ?? "", a.hostname ?? ""])
        .sort((x, y) => (x.join() < y.join() ? -1 : x.join() > y.join() ? 1 : 0)),
    );
  const target = canonical(addresses);
  const updates: StatusUpdate[] = [];
  for (const ing of ingresses) {
    const ref = refOf(ing.metadata);
    if (!wanted.has(refKey(ref))) continue;
    if (canonical(ing.status?.loadBalancer?.ingress ?? []) === target) continue;
    updates.push({ ingress: ref, addresses: [...addresses] });
  }
  return updates;
}

/** `ns/name` as flags spell object references. */
export class ObjectRefError extends Error {
  override name = "ObjectRefError";
  constructor(flag: string, value: string) {
    super(`${flag} "${value}" is not namespace/name`);
  }
}

export function parseObjectRef(flag: string, value: string): ObjectRef {
  const parts = value.split("/");
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new ObjectRefError(flag, value);
  return { namespace: parts[0], name: parts[1] };
}
