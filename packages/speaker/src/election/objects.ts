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

// What the speaker's informers keep of the cluster-wide collections (packages/speaker/README.md "Memory"): they
// hold every Service, EndpointSlice and Node of the cluster, and the election and BGP read only these fields (the
// types above; TypeScript holds the two together). A real Service's annotations (kubectl's last-applied
// configuration), an EndpointSlice's addresses, ports and Pod references, and a Node's image list, capacity, node
// info and annotations are most of their bytes.

type WithUid = { metadata: ObjectMeta & { uid?: string } };

/** name, namespace, uid (Events name it), resourceVersion (the informer compares it), and `labels` when asked. */
function metaFields(meta: ObjectMeta & { uid?: string }, labels: Record<string, string> | undefined): ObjectMeta & { uid?: string } {
  return {
    name: meta.name,
    ...(meta.namespace === undefined ? {} : { namespace: meta.namespace }),
    ...(meta.uid === undefined ? {} : { uid: meta.uid }),
    ...(meta.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }),
    ...(labels === undefined ? {} : { labels }),
  };
}

/** Of a Node: its metadata (labels, no annotations), addresses and conditions' type and status. */
export function nodeFields(node: NodeObject & WithUid): NodeObject {
  const status = node.status;
  return {
    metadata: metaFields(node.metadata, node.metadata.labels),
    ...(status === undefined
      ? {}
      : {
          status: {
            ...(status.addresses === undefined ? {} : { addresses: status.addresses.map((a) => ({ type: a.type, address: a.address })) }),
            ...(status.conditions === undefined ? {} : { conditions: status.conditions.map((c) => ({ type: c.type, status: c.status })) }),
          },
        }),
  };
}

/** Of a Service: its metadata (labels, for serviceSelectors), type, traffic policy, class and ingress addresses. */
export function serviceFields(service: ServiceObject & WithUid): ServiceObject {
  const { spec, status } = service;
  const ingress = status?.loadBalancer?.ingress;
  return {
    metadata: metaFields(service.metadata, service.metadata.labels),
    ...(spec === undefined
      ? {}
      : {
          spec: {
            ...(spec.type === undefined ? {} : { type: spec.type }),
            ...(spec.externalTrafficPolicy === undefined ? {} : { externalTrafficPolicy: spec.externalTrafficPolicy }),
            ...(spec.loadBalancerClass === undefined ? {} : { loadBalancerClass: spec.loadBalancerClass }),
          },
        }),
    ...(ingress === undefined
      ? {}
      : {
          status: {
            loadBalancer: {
              ingress: ingress.map((i) => ({ ...(i.ip === undefined ? {} : { ip: i.ip }), ...(i.hostname === undefined ? {} : { hostname: i.hostname }) })),
            },
          },
        }),
  };
}

/** Of an EndpointSlice: its Service's name label, and each endpoint's node and conditions. */
export function endpointSliceFields(slice: EndpointSliceObject & WithUid): EndpointSliceObject {
  const service = slice.metadata.labels?.[SERVICE_NAME_LABEL];
  return {
    metadata: metaFields(slice.metadata, service === undefined ? undefined : { [SERVICE_NAME_LABEL]: service }),
    ...(slice.endpoints == null
      ? {}
      : {
          endpoints: slice.endpoints.map((e) => ({
            ...(e.conditions == null
              ? {}
              : {
                  conditions: {
                    ...(e.conditions.ready === undefined ? {} : { ready: e.conditions.ready }),
                    ...(e.conditions.serving === undefined ? {} : { serving: e.conditions.serving }),
                    ...(e.conditions.terminating === undefined ? {} : { terminating: e.conditions.terminating }),
                  },
                }),
            ...(e.nodeName === undefined ? {} : { nodeName: e.nodeName }),
          })),
        }),
  };
}

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
