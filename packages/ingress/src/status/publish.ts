import type { Ingress, LoadBalancerIngress, ObjectRef, Service } from "../model/objects.ts";
import { refKey, refOf } from "../model/objects.ts";

/** `--publish-service ns/name`: the Service whose load-balancer addresses are our Ingresses' addresses. */
export function loadBalancerAddresses(service: Service | undefined): LoadBalancerIngress[] {
  return (service?.status?.loadBalancer?.ingress ?? []).map((lb) => ({ ...(lb.ip ? { ip: lb.ip } : {}), ...(lb.hostname ? { hostname: lb.hostname } : {}) }));
}

export interface StatusUpdate {
  ingress: ObjectRef;
  /** what `status.loadBalancer.ingress` becomes; empty clears it */
  addresses: LoadBalancerIngress[];
  /**
   * Set when clearing an Ingress that is no longer ours: the write must apply only to the version that was
   * judged, so that an address another controller wrote meanwhile is never erased (409 instead).
   */
  resourceVersion: string | null;
}

/** One entry of `metadata.managedFields`: which field manager last set which fields. */
interface ManagedFieldsEntry {
  manager?: string;
  subresource?: string;
  fieldsV1?: { "f:status"?: { "f:loadBalancer"?: { "f:ingress"?: unknown } } };
}

/**
 * Whether `fieldManager` owns the Ingress's `status.loadBalancer.ingress`, i.e. wrote its current value.
 * The list is atomic, so the API server hands the whole of it to whoever changes it last.
 */
export function isPublishedBy(ingress: Ingress, fieldManager: string): boolean {
  const entries = (ingress.metadata as { managedFields?: ManagedFieldsEntry[] }).managedFields ?? [];
  return entries.some((e) => e.manager === fieldManager && (e.subresource ?? "status") === "status" && e.fieldsV1?.["f:status"]?.["f:loadBalancer"]?.["f:ingress"] !== undefined);
}

/**
 * The status writes that make the API agree with us. Pure. Ingresses of ours get the published addresses
 * (empty when the Service has none). Ingresses that are not ours (any more) but still carry an address that
 * `fieldManager` wrote are cleared, as ingress-nginx does; an address written by anyone else is never touched.
 */
export function statusUpdates(ingresses: readonly Ingress[], ours: readonly ObjectRef[], addresses: readonly LoadBalancerIngress[], fieldManager: string): StatusUpdate[] {
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
    const current = ing.status?.loadBalancer?.ingress ?? [];
    if (wanted.has(refKey(ref))) {
      if (canonical(current) !== target) updates.push({ ingress: ref, addresses: [...addresses], resourceVersion: null });
    } else if (current.length > 0 && isPublishedBy(ing, fieldManager)) {
      updates.push({ ingress: ref, addresses: [], resourceVersion: ing.metadata.resourceVersion ?? null });
    }
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
