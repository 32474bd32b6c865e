// The one place where Kubernetes API paths are built: every package names a resource type from here (or defines
// one with `resourceType`) and gets its paths from `resourcePath`, which URL-encodes every name it is given.

/**
 * What every object read through a ResourceType has, whatever a package's own view of it: the identity fields an
 * informer keys and resumes by. (client-node's ApiObject fits, and so do plain-JSON views whose timestamps
 * are strings.)
 */
export type ApiObject = { metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string } };

/**
 * One kind of object in the API: its group ("" for the core group), version, plural resource name and whether it
 * lives in namespaces. `T` is the object's TypeScript shape; informers and requests built from the type carry it,
 * so callers never cast what they read.
 */
export type ResourceType<T extends ApiObject = ApiObject> = {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Never set: it only carries `T`. */
  readonly object?: T;
};

export function resourceType<T extends ApiObject = ApiObject>(group: string, version: string, plural: string, namespaced: boolean): ResourceType<T> {
  return { group, version, plural, namespaced };
}

/** The same resource type, read as objects of shape `T` (a package's own view of, say, a Service). */
export function typedResource<T extends ApiObject>(type: ResourceType): ResourceType<T> {
  return { group: type.group, version: type.version, plural: type.plural, namespaced: type.namespaced };
}

/** A path asked of a resource type that cannot have it (a namespace for a cluster-scoped type, a name without a namespace…). */
export class ResourcePathError extends Error {
  override name = "ResourcePathError";
}

export type ResourceLocation = {
  /** Absent for cluster-scoped types, and for a namespaced type's every-namespace collection. */
  namespace?: string | undefined;
  /** Absent: the collection. */
  name?: string | undefined;
  /** `status`, `token`, … (needs a name). */
  subresource?: string;
};

/** `/api/v1/namespaces/a%2Fb/services/x/status` and the like; every segment given is URL-encoded. */
export function resourcePath(type: ResourceType, where: ResourceLocation = {}): string {
  const { namespace, name, subresource } = where;
  const what = `${type.group === "" ? "" : `${type.group}/`}${type.version} ${type.plural}`;
  if (namespace !== undefined && !type.namespaced) throw new ResourcePathError(`${what} is cluster-scoped: no namespace "${namespace}"`);
  if (namespace === "" || name === "" || subresource === "") throw new ResourcePathError(`${what}: an empty namespace, name or subresource`);
  if (type.namespaced && name !== undefined && namespace === undefined) throw new ResourcePathError(`${what} "${name}" needs a namespace`);
  if (subresource !== undefined && name === undefined) throw new ResourcePathError(`${what}: subresource "${subresource}" needs a name`);
  const root = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const inNamespace = namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
  const object = name === undefined ? "" : `/${encodeURIComponent(name)}`;
  const sub = subresource === undefined ? "" : `/${encodeURIComponent(subresource)}`;
  return `${root}${inNamespace}/${type.plural}${object}${sub}`;
}

/** The types Bollard's components read and write. Packages narrow `T` with `resourceType` where they need fields. */
export const resources = {
  namespaces: resourceType("", "v1", "namespaces", false),
  nodes: resourceType("", "v1", "nodes", false),
  services: resourceType("", "v1", "services", true),
  secrets: resourceType("", "v1", "secrets", true),
  configMaps: resourceType("", "v1", "configmaps", true),
  serviceAccounts: resourceType("", "v1", "serviceaccounts", true),
  endpointSlices: resourceType("discovery.k8s.io", "v1", "endpointslices", true),
  ingresses: resourceType("networking.k8s.io", "v1", "ingresses", true),
  ingressClasses: resourceType("networking.k8s.io", "v1", "ingressclasses", false),
  events: resourceType("events.k8s.io", "v1", "events", true),
  leases: resourceType("coordination.k8s.io", "v1", "leases", true),
  tokenReviews: resourceType("authentication.k8s.io", "v1", "tokenreviews", false),
  subjectAccessReviews: resourceType("authorization.k8s.io", "v1", "subjectaccessreviews", false),
  ipAddressPools: resourceType("metallb.io", "v1beta1", "ipaddresspools", true),
  l2Advertisements: resourceType("metallb.io", "v1beta1", "l2advertisements", true),
  serviceL2Statuses: resourceType("metallb.io", "v1beta1", "servicel2statuses", true),
  // BGP mode. BGPPeer is read at v1beta2, its stored version (v1beta1 is served too, conversion None).
  bgpPeers: resourceType("metallb.io", "v1beta2", "bgppeers", true),
  bgpAdvertisements: resourceType("metallb.io", "v1beta1", "bgpadvertisements", true),
  communities: resourceType("metallb.io", "v1beta1", "communities", true),
  bfdProfiles: resourceType("metallb.io", "v1beta1", "bfdprofiles", true),
  serviceBGPStatuses: resourceType("metallb.io", "v1beta1", "servicebgpstatuses", true),
  configurationStates: resourceType("metallb.io", "v1beta1", "configurationstates", true),
} as const;
