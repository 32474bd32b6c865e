// The allocator: pools + Services → addresses, with MetalLB v0.15's rules. Pure: no I/O, no clock.
//
// State grows with the addresses in use, never with the size of a pool. An allocator only ever
// adds addresses (a plan builds a fresh one), so each range keeps a cursor below which every
// address is taken: finding the lowest free address steps over used addresses once in all, and a
// /64 costs what a /30 costs. Shareable addresses are found through an index by sharing key.
import { AddressParseError, formatIP, type IPAddress, type IPFamily, type Pool, type PoolRange, parseIP, selectorMatches } from "@bollard/core";
import type { Allocation, AllocationFailure, FailureReason, PoolUsage, ServiceRequest } from "./types.ts";

/**
 * How one Service uses an address: enough to decide whether another Service may share it.
 * `backendKey` is MetalLB's: the Service's selector with externalTrafficPolicy Local, "" with
 * Cluster — so Services sharing an address agree on where traffic may land, and a Local and a
 * Cluster Service (with a selector) never share.
 */
type Holder = { key: string; sharingKey: string; backendKey: string; local: boolean; ports: Set<string> };

type AddressUse = { pool: Pool; holders: Holder[] };

export type RestoreResult = { allocation: Allocation; failure: AllocationFailure | undefined } | { cleared: string };

export type AllocateResult = { allocation: Allocation } | { failure: AllocationFailure };

export type Allocator = {
  /** Takes back addresses a Service already holds, if they are still valid; else says why not. */
  restore(request: ServiceRequest, ips: readonly string[]): RestoreResult;
  /** Gives a Service new addresses: the requested ones, from its pool, or automatically. */
  allocate(request: ServiceRequest): AllocateResult;
  usage(): PoolUsage[];
};

const failure = (reason: FailureReason, message: string): { failure: AllocationFailure } => ({ failure: { reason, message } });

const addressKey = (family: IPFamily, value: bigint): string => `${family}/${value.toString(16)}`;

const familyName = (family: IPFamily): string => `IPv${family}`;

/** IPv4 addresses ending in .0 or .255, which some consumer routers drop as broadcasts. */
const isBuggy = (family: IPFamily, value: bigint): boolean => family === 4 && (value % 256n === 0n || value % 256n === 255n);

export function createAllocator(pools: readonly Pool[]): Allocator {
  const poolsByName = new Map(pools.map((pool) => [pool.name, pool]));
  const used = new Map<string, AddressUse>();
  /** Per range: every address below it is used (or avoided). */
  const cursors = new Map<PoolRange, bigint>();
  /** Addresses in use by Services with that sharing key. */
  const bySharingKey = new Map<string, IPAddress[]>();

  function poolContaining(address: IPAddress): { pool: Pool; buggy: boolean } | undefined {
    for (const pool of pools) {
      for (const range of pool.ranges) {
        if (range.family === address.family && range.first <= address.value && address.value <= range.last) {
          return { pool, buggy: pool.avoidBuggyIPs && isBuggy(address.family, address.value) };
        }
      }
    }
    return undefined;
  }

  function sharingProblem(use: AddressUse, holder: Holder, ip: string): string | undefined {
    for (const other of use.holders) {
      if (other.key === holder.key) continue;
      if (other.sharingKey === "") return `${ip} is in use by ${other.key}, which does not allow sharing`;
      if (holder.sharingKey === "") {
        return `${ip} is in use by ${other.key}; sharing it needs the same metallb.io/allow-shared-ip key ("${other.sharingKey}")`;
      }
      if (other.sharingKey !== holder.sharingKey) {
        return `${ip} is in use by ${other.key} with sharing key "${other.sharingKey}", not "${holder.sharingKey}"`;
      }
      for (const port of holder.ports) {
        if (other.ports.has(port)) return `${ip} is shared with ${other.key}, which already uses port ${port}`;
      }
      if (holder.backendKey !== other.backendKey) {
        if (holder.local !== other.local) {
          return `${ip} is shared with ${other.key}; a Service with externalTrafficPolicy Local and one with Cluster never share an address`;
        }
        return `${ip} is shared with ${other.key}; with externalTrafficPolicy Local both need the same selector`;
      }
    }
    return undefined;
  }

  function lowestFree(pool: Pool, range: PoolRange): bigint | undefined {
    let value = cursors.get(range) ?? range.first;
    while (value <= range.last && ((pool.avoidBuggyIPs && isBuggy(range.family, value)) || used.has(addressKey(range.family, value)))) value++;
    cursors.set(range, value);
    return value <= range.last ? value : undefined;
  }

  /** The lowest address of `family` in the pool, in spec order, that is free or may be shared. */
  function lowestAvailable(pool: Pool, family: IPFamily, holder: Holder): IPAddress | undefined {
    const shared = holder.sharingKey === "" ? [] : (bySharingKey.get(holder.sharingKey) ?? []);
    for (const range of pool.ranges) {
      if (range.family !== family) continue;
      let best = lowestFree(pool, range);
      for (const address of shared) {
        if (address.family !== family || address.value < range.first || address.value > range.last) continue;
        if (best !== undefined && address.value >= best) continue;
        const use = used.get(addressKey(family, address.value)) as AddressUse;
        if (sharingProblem(use, holder, "") === undefined) best = address.value;
      }
      if (best !== undefined) return { family, value: best };
    }
    return undefined;
  }

  function assign(pool: Pool, addresses: IPAddress[], holder: Holder): Allocation {
    for (const address of addresses) {
      const key = addressKey(address.family, address.value);
      const use = used.get(key);
      if (use === undefined) {
        used.set(key, { pool, holders: [holder] });
        if (holder.sharingKey !== "") {
          const list = bySharingKey.get(holder.sharingKey);
          if (list === undefined) bySharingKey.set(holder.sharingKey, [address]);
          else list.push(address);
        }
      } else use.holders.push(holder);
    }
    return { ips: addresses.map(formatIP), pool: pool.name };
  }

  /** Whether the pool's serviceAllocation lets the Service take its addresses. */
  function admits(pool: Pool, request: ServiceRequest): boolean {
    const allocation = pool.serviceAllocation;
    if (allocation === undefined) return true;
    const byNamespace = allocation.namespaces.length > 0 || allocation.namespaceSelectors.length > 0;
    if (
      byNamespace &&
      !allocation.namespaces.includes(request.namespace) &&
      !allocation.namespaceSelectors.some((selector) => selectorMatches(selector, request.namespaceLabels))
    ) {
      return false;
    }
    if (allocation.serviceSelectors.length > 0 && !allocation.serviceSelectors.some((selector) => selectorMatches(selector, request.labels))) {
      return false;
    }
    return true;
  }

  /** Checks that given addresses may go to the Service: one pool that admits it, sharing rules. */
  function checkAddresses(request: ServiceRequest, holder: Holder, addresses: IPAddress[]): { pool: Pool } | { failure: AllocationFailure } {
    let pool: Pool | undefined;
    for (const address of addresses) {
      const ip = formatIP(address);
      const owner = poolContaining(address);
      if (owner === undefined) return failure("AddressInNoPool", `${ip} is in no pool`);
      if (owner.buggy) {
        return failure("AddressInNoPool", `${ip} is in pool "${owner.pool.name}", which avoids addresses ending in .0 and .255 (spec.avoidBuggyIPs)`);
      }
      if (pool !== undefined && pool !== owner.pool) {
        return failure("RequestedIPsInDifferentPools", `${formatIP(addresses[0] as IPAddress)} is in pool "${pool.name}" but ${ip} is in pool "${owner.pool.name}"`);
      }
      pool = owner.pool;
    }
    if (pool === undefined) throw new Error("checkAddresses needs at least one address");
    if (request.pool && request.pool !== pool.name) {
      return failure("PoolMismatch", `${addresses.map(formatIP).join(",")} is in pool "${pool.name}" but metallb.io/address-pool asks for pool "${request.pool}"`);
    }
    if (!admits(pool, request)) return failure("PoolNotAllowed", `pool "${pool.name}" does not admit this Service (spec.serviceAllocation)`);
    for (const address of addresses) {
      const use = used.get(addressKey(address.family, address.value));
      const problem = use === undefined ? undefined : sharingProblem(use, holder, formatIP(address));
      if (problem !== undefined) return failure("SharingConflict", problem);
    }
    return { pool };
  }

  /** Pools tried for a Service without request or pool annotation, in order. */
  function automaticPools(request: ServiceRequest): Pool[] {
    const byName = (a: Pool, b: Pool) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const byPriority = (a: Pool, b: Pool) => {
      const pa = a.serviceAllocation?.priority ?? Number.POSITIVE_INFINITY;
      const pb = b.serviceAllocation?.priority ?? Number.POSITIVE_INFINITY;
      return pa === pb ? byName(a, b) : pa - pb;
    };
    const selective = pools.filter((pool) => pool.autoAssign && pool.serviceAllocation !== undefined && admits(pool, request));
    const open = pools.filter((pool) => pool.autoAssign && pool.serviceAllocation === undefined);
    return [...selective.sort(byPriority), ...open.sort(byName)];
  }

  /** The first pool that can serve the family policy: dual-stack pools first when both are wanted. */
  function pick(candidates: Pool[], families: IPFamily[], request: ServiceRequest, holder: Holder): { pool: Pool; addresses: IPAddress[] } | undefined {
    const [primary, secondary] = families as [IPFamily, IPFamily | undefined];
    if (secondary === undefined) {
      for (const pool of candidates) {
        const address = lowestAvailable(pool, primary, holder);
        if (address !== undefined) return { pool, addresses: [address] };
      }
      return undefined;
    }
    let single: { pool: Pool; addresses: IPAddress[] } | undefined;
    let other: { pool: Pool; addresses: IPAddress[] } | undefined;
    for (const pool of candidates) {
      const first = lowestAvailable(pool, primary, holder);
      const second = lowestAvailable(pool, secondary, holder);
      if (first !== undefined && second !== undefined) return { pool, addresses: [first, second] };
      if (request.ipFamilyPolicy === "PreferDualStack") {
        if (first !== undefined) single ??= { pool, addresses: [first] };
        if (second !== undefined) other ??= { pool, addresses: [second] };
      }
    }
    return single ?? other;
  }

  function exhausted(candidates: Pool[], families: IPFamily[], request: ServiceRequest): { failure: AllocationFailure } {
    const offers = (pool: Pool, family: IPFamily) => pool.ranges.some((range) => range.family === family);
    const both = request.ipFamilyPolicy === "RequireDualStack";
    const offering = candidates.filter((pool) => (both ? families.every((f) => offers(pool, f)) : families.some((f) => offers(pool, f))));
    const what = families.map(familyName).join(both ? " and " : " or ");
    if (offering.length === 0) {
      const where = request.pool ? `pool "${request.pool}" does not offer` : "no pool offers";
      return failure("NoPoolForFamily", `${where} ${both ? "both " : ""}${what} addresses${request.pool ? "" : " to this Service"}`);
    }
    const names = offering.map((pool) => `"${pool.name}"`).join(", ");
    const free = both ? `pair of ${what} addresses` : `${what} address`;
    return failure("PoolExhausted", `no free ${free} in pool${offering.length > 1 ? "s" : ""} ${names}`);
  }

  return {
    allocate(request) {
      const holder = holderFor(request);
      const requested = requestedAddresses(request);
      if ("failure" in requested) return requested;
      if (requested.addresses.length > 0) {
        const families = serviceFamilies(request, requested.addresses);
        if ("failure" in families) return families;
        const misfit = requestMisfit(requested.addresses, families.families, request);
        if (misfit !== undefined) return failure("RequestedIPFamilyMismatch", `requested ${misfit}`);
        const checked = checkAddresses(request, holder, requested.addresses);
        if ("failure" in checked) return checked;
        return { allocation: assign(checked.pool, ipv4First(requested.addresses), holder) };
      }
      const families = serviceFamilies(request, []);
      if ("failure" in families) return families;
      let candidates: Pool[];
      if (request.pool) {
        const pool = poolsByName.get(request.pool);
        if (pool === undefined) return failure("UnknownPool", `metallb.io/address-pool names pool "${request.pool}", which does not exist`);
        if (!admits(pool, request)) return failure("PoolNotAllowed", `pool "${pool.name}" does not admit this Service (spec.serviceAllocation)`);
        candidates = [pool];
      } else {
        candidates = automaticPools(request);
        if (candidates.length === 0) {
          return failure("NoPoolAvailable", pools.length === 0 ? "no IPAddressPool is configured" : "no pool with autoAssign admits this Service");
        }
      }
      const picked = pick(candidates, families.families, request, holder);
      if (picked === undefined) return exhausted(candidates, families.families, request);
      return { allocation: assign(picked.pool, ipv4First(picked.addresses), holder) };
    },

    restore(request, ips) {
      const addresses: IPAddress[] = [];
      for (const ip of ips) {
        try {
          addresses.push(parseIP(ip));
        } catch (error) {
          if (error instanceof AddressParseError) return { cleared: `status holds ${JSON.stringify(ip)}, which is not an IP address` };
          throw error;
        }
      }
      const holder = holderFor(request);
      const requested = requestedAddresses(request);
      const families = serviceFamilies(request, "addresses" in requested && requested.addresses.length > 0 ? requested.addresses : addresses);
      if ("failure" in families) return { cleared: families.failure.message };
      const misfit = familyMisfit(addresses, families.families, request);
      if (misfit !== undefined) return { cleared: misfit };
      const checked = checkAddresses(request, holder, addresses);
      if ("failure" in checked) return { cleared: checked.failure.message };
      if ("addresses" in requested && requested.addresses.length > 0) {
        if (!sameAddresses(requested.addresses, addresses)) return { cleared: `the Service asks for ${requested.addresses.map(formatIP).join(",")}` };
        const requestMisfitText = requestMisfit(requested.addresses, families.families, request);
        if (requestMisfitText !== undefined) return { cleared: `requested ${requestMisfitText}` };
      }
      const allocation = assign(checked.pool, ipv4First(addresses), holder);
      // PreferDualStack holding one family: add the other from the same pool when it has one free,
      // keeping the address the Service already has.
      if (request.ipFamilyPolicy === "PreferDualStack" && families.families.length === 2 && addresses.length === 1) {
        const missing = families.families.find((family) => family !== (addresses[0] as IPAddress).family) as IPFamily;
        const extra = lowestAvailable(checked.pool, missing, holder);
        if (extra !== undefined) {
          assign(checked.pool, [extra], holder);
          allocation.ips = ipv4First([...addresses, extra]).map(formatIP);
        }
      }
      // A malformed request does not cost the Service the address it has; it is reported instead.
      return { allocation, failure: "failure" in requested ? requested.failure : undefined };
    },

    usage() {
      const assigned = new Map<string, { 4: number; 6: number }>(pools.map((pool) => [pool.name, { 4: 0, 6: 0 }]));
      for (const [key, use] of used) {
        const counts = assigned.get(use.pool.name);
        if (counts !== undefined) counts[key.startsWith("4/") ? 4 : 6]++;
      }
      return pools.map((pool) => {
        const totalIPv4 = poolSize(pool, 4);
        const totalIPv6 = poolSize(pool, 6);
        const counts = assigned.get(pool.name) ?? { 4: 0, 6: 0 };
        return {
          pool: pool.name,
          assignedIPv4: counts[4],
          assignedIPv6: counts[6],
          totalIPv4,
          totalIPv6,
          availableIPv4: totalIPv4 - BigInt(counts[4]),
          availableIPv6: totalIPv6 - BigInt(counts[6]),
        };
      });
    },
  };
}

function holderFor(request: ServiceRequest): Holder {
  const local = request.externalTrafficPolicy === "Local";
  const selector = Object.entries(request.selector)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return {
    key: request.key,
    sharingKey: request.sharingKey ?? "",
    backendKey: local ? selector : "",
    local,
    ports: new Set(request.ports.map((port) => `${port.protocol}/${port.port}`)),
  };
}

/** The addresses a Service asks for, from the annotation or spec.loadBalancerIP (never both). */
function requestedAddresses(request: ServiceRequest): { addresses: IPAddress[] } | { failure: AllocationFailure } {
  const annotation = request.loadBalancerIPs?.trim() ?? "";
  const spec = request.loadBalancerIP?.trim() ?? "";
  if (annotation !== "" && spec !== "") {
    return failure("BothAnnotationAndSpec", "both metallb.io/loadBalancerIPs and spec.loadBalancerIP are set; use one");
  }
  if (annotation === "" && spec === "") return { addresses: [] };
  const source = annotation !== "" ? "metallb.io/loadBalancerIPs" : "spec.loadBalancerIP";
  const texts = annotation !== "" ? annotation.split(",").map((text) => text.trim()) : [spec];
  const addresses: IPAddress[] = [];
  for (const text of texts) {
    try {
      addresses.push(parseIP(text));
    } catch (error) {
      if (error instanceof AddressParseError) return failure("InvalidRequestedIP", `${source}: ${error.message}`);
      throw error;
    }
  }
  for (const family of [4, 6] as const) {
    if (addresses.filter((address) => address.family === family).length > 1) {
      return failure("InvalidRequestedIP", `${source}: at most one ${familyName(family)} address may be requested`);
    }
  }
  return { addresses };
}

/**
 * The families a Service may hold, preferred first. Manifests on disk may lack spec.ipFamilies
 * (the API server always sets it); then the addresses in hand decide, else IPv4 (and IPv6 for the
 * dual-stack policies).
 */
function serviceFamilies(request: ServiceRequest, inHand: IPAddress[]): { families: IPFamily[] } | { failure: AllocationFailure } {
  let families: IPFamily[] = [...new Set(request.ipFamilies)];
  if (families.length === 0) {
    families = inHand.length > 0 ? [...new Set(inHand.map((address) => address.family))] : [4, 6];
    if (request.ipFamilyPolicy !== "SingleStack" && families.length === 1) families.push(families[0] === 4 ? 6 : 4);
  }
  if (request.ipFamilyPolicy === "SingleStack") return { families: families.slice(0, 1) };
  if (request.ipFamilyPolicy === "RequireDualStack" && families.length < 2) {
    return failure("RequestedIPFamilyMismatch", "ipFamilyPolicy RequireDualStack but spec.ipFamilies names one family");
  }
  return { families: families.slice(0, 2) };
}

function familyMisfit(addresses: IPAddress[], families: IPFamily[], request: ServiceRequest): string | undefined {
  for (const family of [4, 6] as const) {
    if (addresses.filter((address) => address.family === family).length > 1) return `more than one ${familyName(family)} address`;
  }
  for (const address of addresses) {
    if (!families.includes(address.family)) {
      return `${formatIP(address)} is ${familyName(address.family)} but the Service is ${families.map(familyName).join("/")}`;
    }
  }
  if (request.ipFamilyPolicy === "RequireDualStack" && addresses.length < 2) {
    return "ipFamilyPolicy RequireDualStack needs one address of each family";
  }
  return undefined;
}

/**
 * What is wrong with requested addresses beyond `familyMisfit`: a PreferDualStack Service with two
 * cluster IP families must ask for one address of each, as MetalLB refuses a single-family request
 * for it (the requested addresses' family must equal the Service's, and dual-stack is a family).
 */
function requestMisfit(addresses: IPAddress[], families: IPFamily[], request: ServiceRequest): string | undefined {
  const misfit = familyMisfit(addresses, families, request);
  if (misfit !== undefined) return misfit;
  if (request.ipFamilyPolicy === "PreferDualStack" && new Set(request.ipFamilies).size === 2 && addresses.length < 2) {
    return `${addresses.map(formatIP).join(",")}: a PreferDualStack Service with IPv4 and IPv6 cluster IPs needs one address of each family`;
  }
  return undefined;
}

function sameAddresses(a: IPAddress[], b: IPAddress[]): boolean {
  return a.length === b.length && a.every((x) => b.some((y) => y.family === x.family && y.value === x.value));
}

/** IPv4 before IPv6, whatever the order of spec.ipFamilies: the order MetalLB writes, and the first is the election's key. */
function ipv4First(addresses: IPAddress[]): IPAddress[] {
  return [...addresses].sort((a, b) => a.family - b.family);
}

/** Addresses of one family in a pool, less .0/.255 when the pool avoids them. */
export function poolSize(pool: Pool, family: IPFamily): bigint {
  let total = 0n;
  for (const range of pool.ranges) {
    if (range.family !== family) continue;
    total += range.last - range.first + 1n;
    if (pool.avoidBuggyIPs && family === 4) {
      total -= countResidue(range.first, range.last, 0n) + countResidue(range.first, range.last, 255n);
    }
  }
  return total;
}

/** How many values in [first, last] are ≡ residue (mod 256). */
function countResidue(first: bigint, last: bigint, residue: bigint): bigint {
  const floorDiv = (n: bigint) => (n >= 0n ? n / 256n : -((-n + 255n) / 256n));
  return floorDiv(last - residue) - floorDiv(first - 1n - residue);
}
