// The parts of Kubernetes objects the election reads, as plain JSON shapes: informer objects and
// YAML fixtures both fit them.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The API server's version of the object; absent in YAML. */
  resourceVersion?: string;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

export interface NodeObject {
  metadata: ObjectMeta;
  status?: { conditions?: Array<{ type: string; status: string }>; addresses?: Array<{ type: string; address: string }> };
}

export interface ServiceObject {
  metadata: ObjectMeta;
  spec?: { type?: string; externalTrafficPolicy?: string; loadBalancerClass?: string | null };
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } };
}

export interface EndpointSliceObject {
  metadata: ObjectMeta;
  endpoints?: Array<{
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
    nodeName?: string | null;
  }> | null;
}

export interface IPAddressPoolObject {
  metadata: ObjectMeta;
  spec?: { addresses?: string[] };
}

export interface L2AdvertisementObject {
  metadata: ObjectMeta;
  spec?: {
    ipAddressPools?: string[];
    ipAddressPoolSelectors?: LabelSelector[];
    nodeSelectors?: LabelSelector[];
    serviceSelectors?: LabelSelector[];
    interfaces?: string[];
  };
}

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/**
 * EndpointSlices by their Service's `namespace/name`, built once per run: looking them up per Service made each
 * election and BGP plan O(Services × slices), and the speaker runs both on every change, so 1,000 Services
 * stalled its event loop for seconds during churn.
 */
export function slicesByService(slices: readonly EndpointSliceObject[]): Map<string, EndpointSliceObject[]> {
  const byService = new Map<string, EndpointSliceObject[]>();
  for (const slice of slices) {
    const service = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    if (service === undefined) continue;
    const key = `${slice.metadata.namespace ?? "default"}/${service}`;
    const list = byService.get(key);
    if (list) list.push(slice);
    else byService.set(key, [slice]);
  }
  return byService;
}
