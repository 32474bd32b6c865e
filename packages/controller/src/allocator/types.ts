import type { IPFamily, Labels } from "@bollard/core";

export type IPFamilyPolicy = "SingleStack" | "PreferDualStack" | "RequireDualStack";

export type ServicePort = { protocol: string; port: number };

/** What the allocator needs to know about one Service; no Kubernetes types. */
export type ServiceRequest = {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  namespaceLabels: Labels;
  labels: Labels;
  /** The `metallb.io/loadBalancerIPs` annotation as written: comma-separated, at most one per family. */
  loadBalancerIPs: string | undefined;
  /** `spec.loadBalancerIP`. */
  loadBalancerIP: string | undefined;
  /** The `metallb.io/address-pool` annotation. */
  pool: string | undefined;
  /** The `metallb.io/allow-shared-ip` annotation. */
  sharingKey: string | undefined;
  ports: ServicePort[];
  externalTrafficPolicy: "Cluster" | "Local";
  selector: Labels;
  /** `spec.ipFamilies`; empty when unset (only in manifests on disk: the API server always sets it). */
  ipFamilies: IPFamily[];
  ipFamilyPolicy: IPFamilyPolicy;
};

export type FailureReason =
  | "BothAnnotationAndSpec"
  | "InvalidRequestedIP"
  | "RequestedIPFamilyMismatch"
  | "AddressInNoPool"
  | "RequestedIPsInDifferentPools"
  | "PoolMismatch"
  | "UnknownPool"
  | "PoolNotAllowed"
  | "SharingConflict"
  | "PoolExhausted"
  | "NoPoolForFamily"
  | "NoPoolAvailable";

/** Why a Service got no address (or not the one it asked for). */
export type AllocationFailure = { reason: FailureReason; message: string };

export type Allocation = { ips: string[]; pool: string };

/** The decision for one Service in a plan. */
export type ServiceOutcome = {
  key: string;
  /** The addresses the Service should have, IPv4 first (as MetalLB writes them); [] when none. */
  ips: string[];
  pool: string | undefined;
  /** Why the addresses it had (in its status) were taken away, if they were. */
  cleared: string | undefined;
  /** Why it has no address, or keeps an old one while its request cannot be met. */
  failure: AllocationFailure | undefined;
};

/** Addresses of one pool by family; totals are bigint because a /64 holds 2^64. */
export type PoolUsage = {
  pool: string;
  assignedIPv4: number;
  assignedIPv6: number;
  totalIPv4: bigint;
  totalIPv6: bigint;
  availableIPv4: bigint;
  availableIPv6: bigint;
};
