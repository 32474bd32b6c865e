// BGP announcement rules, as MetalLB's BGP mode has them (pure): for every LoadBalancer Service address, which
// nodes announce which prefix to which BGPPeers, with which communities and local-pref. Unlike layer 2 there is
// no election: every eligible node announces, and the routers spread traffic over them (ECMP).
//
// - The address's pool must be selected by a BGPAdvertisement (by name, by label selector, or by naming none).
// - A node announces when the advertisement's nodeSelectors match it (none: every node), it is not labelled
//   node.kubernetes.io/exclude-from-external-load-balancers (unless ignored), its network is available, and
//   the Service has a ready endpoint — on that very node for externalTrafficPolicy: Local.
// - It announces to the BGPPeers whose nodeSelectors match it, narrowed to the advertisement's `peers`.
// - The prefix is the address rolled up to aggregationLength (IPv4, default 32) or aggregationLengthV6 (128);
//   an aggregation shorter than a CIDR of the pool would announce addresses outside it, so it is refused.
// - Communities are "AS:VALUE", "large:G:L1:L2" or the name of an alias in a Community object; several
//   advertisements for the same (node, peer, prefix) merge their communities, and the highest localPref wins.
import { type LargeCommunity, parseCommunity } from "@bollard/bgp";
import { type AddressRange, formatIP, type LabelSelector, parseAddressRange, parseIP, parseLabelSelector, rangeContains, selectorMatches } from "@bollard/core";
import { type EndpointSliceObject, type IPAddressPoolObject, type NodeObject, type ServiceObject, slicesByService } from "../election/objects.ts";
import type { BGPAdvertisementObject, BGPPeerObject, CommunityObject } from "./objects.ts";

export const EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";

export interface BgpAnnouncementInput {
  nodes: readonly NodeObject[];
  services: readonly ServiceObject[];
  endpointSlices: readonly EndpointSliceObject[];
  pools: readonly IPAddressPoolObject[];
  peers: readonly BGPPeerObject[];
  advertisements: readonly BGPAdvertisementObject[];
  communities: readonly CommunityObject[];
}

export interface BgpAnnouncementOptions {
  ignoreExcludeLB: boolean;
  loadBalancerClass: string | null;
}

/** One prefix one node announces to one peer. */
export interface BgpAnnouncement {
  namespace: string;
  name: string;
  ip: string;
  prefix: string;
  node: string;
  peer: string;
  communities: number[];
  largeCommunities: LargeCommunity[];
  localPref?: number;
  /** The BGPAdvertisements that produced it, sorted. */
  advertisements: string[];
}

/** A Service address no node announces over BGP, and why. */
export interface BgpNotAnnounced {
  namespace: string;
  name: string;
  ip: string;
  reason: string;
}

export interface BgpConfigError {
  kind: "IPAddressPool" | "BGPAdvertisement" | "BGPPeer" | "Community";
  namespace: string;
  name: string;
  message: string;
}

export interface BgpAnnouncementResult {
  announcements: BgpAnnouncement[];
  notAnnounced: BgpNotAnnounced[];
  configErrors: BgpConfigError[];
}

interface Pool {
  name: string;
  labels: Record<string, string>;
  ranges: AddressRange[];
}

interface Advertisement {
  name: string;
  poolNames: readonly string[];
  poolSelectors: readonly LabelSelector[];
  nodeSelectors: readonly LabelSelector[];
  peers: readonly string[];
  aggregationLength: number;
  aggregationLengthV6: number;
  localPref?: number;
  communities: number[];
  largeCommunities: LargeCommunity[];
}

interface Peer {
  name: string;
  nodeSelectors: readonly LabelSelector[];
}

function selectorsOf(raw: readonly unknown[] | undefined, field: string, problems: string[]): LabelSelector[] {
  return (raw ?? []).flatMap((r, i) => {
    const result = parseLabelSelector(r);
    if ("selector" in result) return [result.selector];
    for (const p of result.problems) problems.push(`spec.${field}[${i}]${p.path === "" ? "" : `.${p.path}`}: ${p.message}`);
    return [];
  });
}

function compileAliases(objects: readonly CommunityObject[], errors: BgpConfigError[]): Map<string, string> {
  const aliases = new Map<string, string>();
  for (const object of objects) {
    for (const [i, c] of (object.spec?.communities ?? []).entries()) {
      const { name, namespace = "" } = object.metadata;
      if (!c.name || !c.value) {
        errors.push({ kind: "Community", namespace, name, message: `spec.communities[${i}]: needs a name and a value` });
        continue;
      }
      try {
        parseCommunity(c.value);
      } catch (err) {
        errors.push({ kind: "Community", namespace, name, message: `spec.communities[${i}]: ${(err as Error).message}` });
        continue;
      }
      if (aliases.has(c.name) && aliases.get(c.name) !== c.value) {
        errors.push({ kind: "Community", namespace, name, message: `alias ${c.name} is defined twice with different values` });
        continue;
      }
      aliases.set(c.name, c.value);
    }
  }
  return aliases;
}

/** The CIDR prefix lengths a range decomposes into (the shortest is the widest block). */
function widestCidr(range: AddressRange): number {
  const bits = range.family === 4 ? 32 : 128;
  let widest = bits;
  let first = range.first;
  while (first <= range.last) {
    let size = 0;
    while (size < bits && (first & ((1n << BigInt(size + 1)) - 1n)) === 0n && first + (1n << BigInt(size + 1)) - 1n <= range.last) size++;
    widest = Math.min(widest, bits - size);
    first += 1n << BigInt(size);
  }
  return widest;
}

function compileAdvertisements(objects: readonly BGPAdvertisementObject[], aliases: Map<string, string>, errors: BgpConfigError[]): Advertisement[] {
  const out: Advertisement[] = [];
  for (const object of objects) {
    const { name, namespace = "" } = object.metadata;
    const spec = object.spec ?? {};
    const problems: string[] = [];
    const poolSelectors = selectorsOf(spec.ipAddressPoolSelectors, "ipAddressPoolSelectors", problems);
    const nodeSelectors = selectorsOf(spec.nodeSelectors, "nodeSelectors", problems);
    const aggregationLength = spec.aggregationLength ?? 32;
    const aggregationLengthV6 = spec.aggregationLengthV6 ?? 128;
    if (aggregationLength < 1 || aggregationLength > 32) problems.push(`spec.aggregationLength: ${aggregationLength} is not from 1 to 32`);
    if (aggregationLengthV6 < 1 || aggregationLengthV6 > 128) problems.push(`spec.aggregationLengthV6: ${aggregationLengthV6} is not from 1 to 128`);
    const communities: number[] = [];
    const largeCommunities: LargeCommunity[] = [];
    for (const [i, text] of (spec.communities ?? []).entries()) {
      try {
        const parsed = parseCommunity(aliases.get(text) ?? text);
        if (parsed.kind === "standard") communities.push(parsed.value);
        else largeCommunities.push(parsed.value);
      } catch (err) {
        problems.push(`spec.communities[${i}]: ${aliases.has(text) ? (err as Error).message : `${JSON.stringify(text)} is neither a community nor the name of a Community alias`}`);
      }
    }
    if (problems.length > 0) {
      errors.push({ kind: "BGPAdvertisement", namespace, name, message: problems.join("; ") });
      continue;
    }
    const advertisement: Advertisement = {
      name,
      poolNames: spec.ipAddressPools ?? [],
      poolSelectors,
      nodeSelectors,
      peers: spec.peers ?? [],
      aggregationLength,
      aggregationLengthV6,
      communities,
      largeCommunities,
    };
    if (spec.localPref !== undefined) advertisement.localPref = spec.localPref;
    out.push(advertisement);
  }
  return out;
}

const selectsPool = (a: Advertisement, pool: Pool) =>
  (a.poolNames.length === 0 && a.poolSelectors.length === 0) || a.poolNames.includes(pool.name) || a.poolSelectors.some((s) => selectorMatches(s, pool.labels));
const selectsNode = (selectors: readonly LabelSelector[], node: NodeObject) =>
  selectors.length === 0 || selectors.some((s) => selectorMatches(s, node.metadata.labels ?? {}));

function canServe(conditions: { ready?: boolean | null; serving?: boolean | null } | undefined): boolean {
  // Ready, or serving while terminating: the same test as the L2 election's.
  if (conditions?.ready === undefined || conditions.ready === null || conditions.ready) return true;
  return conditions.serving === true;
}

/** The prefix of `ip` (`text` is its canonical form) rolled up to `length`. */
function aggregate(ip: ReturnType<typeof parseIP>, text: string, length: number): string {
  const bits = ip.family === 4 ? 32 : 128;
  if (length === bits) return `${text}/${length}`;
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - length)) - 1n);
  return `${formatIP({ family: ip.family, value: ip.value & mask })}/${length}`;
}

/** The configuration objects of the input: what every Service's plan reads besides its own objects. */
export type BgpConfigInput = Omit<BgpAnnouncementInput, "services" | "endpointSlices">;

/**
 * The compiled configuration a Service is planned against. `pools` and `peers` are parsed once per run;
 * `applying` holds, per pool, the usable advertisements selecting it (an empty list for none).
 */
export interface BgpPlanContext {
  pools: readonly Pool[];
  peers: readonly Peer[];
  eligibleNodes: readonly NodeObject[];
  applying: ReadonlyMap<Pool, readonly Advertisement[]>;
}

export type { Advertisement as CompiledAdvertisement, Peer as CompiledPeer, Pool as CompiledPool };

export function compileBgpConfig(input: BgpConfigInput, options: BgpAnnouncementOptions): { context: BgpPlanContext; configErrors: BgpConfigError[] } {
  const configErrors: BgpConfigError[] = [];
  const pools: Pool[] = [];
  for (const object of input.pools) {
    const { name, namespace = "" } = object.metadata;
    try {
      pools.push({ name, labels: object.metadata.labels ?? {}, ranges: (object.spec?.addresses ?? []).map((a) => parseAddressRange(a)) });
    } catch (err) {
      configErrors.push({ kind: "IPAddressPool", namespace, name, message: `spec.addresses: ${(err as Error).message}` });
    }
  }
  const aliases = compileAliases(input.communities, configErrors);
  const advertisements = compileAdvertisements(input.advertisements, aliases, configErrors);
  const peers: Peer[] = [];
  for (const object of input.peers) {
    const problems: string[] = [];
    const nodeSelectors = selectorsOf(object.spec?.nodeSelectors, "nodeSelectors", problems);
    if (problems.length > 0) configErrors.push({ kind: "BGPPeer", namespace: object.metadata.namespace ?? "", name: object.metadata.name, message: problems.join("; ") });
    else peers.push({ name: object.metadata.name, nodeSelectors });
  }
  // An aggregation wider than a CIDR of a pool it applies to would announce addresses outside the pool.
  const badAggregation = new Set<string>();
  for (const a of advertisements) {
    for (const pool of pools.filter((p) => selectsPool(a, p))) {
      for (const range of pool.ranges) {
        const length = range.family === 4 ? a.aggregationLength : a.aggregationLengthV6;
        const widest = widestCidr(range);
        if (length < widest) {
          badAggregation.add(a.name);
          configErrors.push({
            kind: "BGPAdvertisement",
            namespace: input.advertisements.find((o) => o.metadata.name === a.name)?.metadata.namespace ?? "",
            name: a.name,
            message: `aggregation length ${length} is shorter than /${widest}, a block of pool ${pool.name}: it would announce addresses outside the pool`,
          });
        }
      }
    }
  }
  const usable = advertisements.filter((a) => !badAggregation.has(a.name));
  const applying = new Map(pools.map((p) => [p, usable.filter((a) => selectsPool(a, p))] as const));

  const eligibleNodes = input.nodes.filter((n) => {
    if (!options.ignoreExcludeLB && n.metadata.labels?.[EXCLUDE_FROM_LB_LABEL] !== undefined) return false;
    return !(n.status?.conditions ?? []).some((c) => c.type === "NetworkUnavailable" && c.status === "True");
  });
  return { context: { pools, peers, eligibleNodes, applying }, configErrors };
}

/** What one Service contributes to the plan, and the pools whose advertisements it read. */
export interface ServiceBgpPlan {
  announcements: BgpAnnouncement[];
  notAnnounced: BgpNotAnnounced[];
  pools: Pool[];
}

/** One Service's announcements (null: not a LoadBalancer Service of ours). Reads only its own objects and `context`. */
export function planServiceBgp(service: ServiceObject, slices: readonly EndpointSliceObject[], context: BgpPlanContext, options: BgpAnnouncementOptions): ServiceBgpPlan | null {
  if (service.spec?.type !== "LoadBalancer") return null;
  if ((service.spec.loadBalancerClass ?? null) !== options.loadBalancerClass) return null;
  const { name, namespace = "default" } = service.metadata;
  const announcements: BgpAnnouncement[] = [];
  const notAnnounced: BgpNotAnnounced[] = [];
  const read: Pool[] = [];
  const readyNodes = new Set<string>();
  let anyReady = false;
  for (const slice of slices) {
    for (const e of slice.endpoints ?? []) {
      if (!canServe(e.conditions)) continue;
      anyReady = true;
      if (e.nodeName) readyNodes.add(e.nodeName);
    }
  }
  const local = service.spec.externalTrafficPolicy === "Local";
  for (const ingress of service.status?.loadBalancer?.ingress ?? []) {
    if (!ingress.ip) continue;
    let ip: ReturnType<typeof parseIP>;
    try {
      ip = parseIP(ingress.ip);
    } catch {
      notAnnounced.push({ namespace, name, ip: ingress.ip, reason: "not an IP address" });
      continue;
    }
    const text = formatIP(ip);
    const pool = context.pools.find((p) => p.ranges.some((r) => rangeContains(r, ip)));
    if (!pool) {
      notAnnounced.push({ namespace, name, ip: text, reason: "in no IPAddressPool" });
      continue;
    }
    read.push(pool);
    const applying = context.applying.get(pool) ?? [];
    if (applying.length === 0) {
      notAnnounced.push({ namespace, name, ip: text, reason: `no BGPAdvertisement selects pool ${pool.name}` });
      continue;
    }
    if (!anyReady) {
      notAnnounced.push({ namespace, name, ip: text, reason: "no ready endpoint" });
      continue;
    }
    const merged = new Map<string, BgpAnnouncement>();
    for (const node of context.eligibleNodes) {
      if (local && !readyNodes.has(node.metadata.name)) continue;
      for (const a of applying) {
        if (!selectsNode(a.nodeSelectors, node)) continue;
        const prefix = aggregate(ip, text, ip.family === 4 ? a.aggregationLength : a.aggregationLengthV6);
        for (const peer of context.peers) {
          if (!selectsNode(peer.nodeSelectors, node)) continue;
          if (a.peers.length > 0 && !a.peers.includes(peer.name)) continue;
          const key = `${node.metadata.name}\0${peer.name}\0${prefix}`;
          const existing = merged.get(key);
          if (!existing) {
            const announcement: BgpAnnouncement = {
              namespace,
              name,
              ip: text,
              prefix,
              node: node.metadata.name,
              peer: peer.name,
              communities: [...a.communities],
              largeCommunities: [...a.largeCommunities],
              advertisements: [a.name],
            };
            if (a.localPref !== undefined) announcement.localPref = a.localPref;
            merged.set(key, announcement);
            continue;
          }
          existing.communities.push(...a.communities);
          existing.largeCommunities.push(...a.largeCommunities);
          existing.advertisements.push(a.name);
          if (a.localPref !== undefined) existing.localPref = Math.max(existing.localPref ?? 0, a.localPref);
        }
      }
    }
    if (merged.size === 0) {
      notAnnounced.push({ namespace, name, ip: text, reason: local ? "no eligible node with a ready endpoint (externalTrafficPolicy: Local) has a BGPPeer" : "no eligible node has a BGPPeer" });
      continue;
    }
    for (const a of merged.values()) {
      a.communities = [...new Set(a.communities)].sort((x, y) => x - y);
      a.largeCommunities = [...new Map(a.largeCommunities.map((c) => [c.join(":"), c])).values()];
      a.advertisements.sort();
      announcements.push(a);
    }
  }
  return { announcements, notAnnounced, pools: read };
}

/** Every Service planned against the compiled configuration: the full recompute. */
export function planServices(services: readonly ServiceObject[], endpointSlices: readonly EndpointSliceObject[], context: BgpPlanContext, options: BgpAnnouncementOptions): Omit<BgpAnnouncementResult, "configErrors"> {
  const slices = slicesByService(endpointSlices);
  const announcements: BgpAnnouncement[] = [];
  const notAnnounced: BgpNotAnnounced[] = [];
  for (const service of services) {
    const plan = planServiceBgp(service, slices.get(serviceKey(service)) ?? [], context, options);
    if (plan === null) continue;
    announcements.push(...plan.announcements);
    notAnnounced.push(...plan.notAnnounced);
  }
  return { announcements, notAnnounced };
}

export const serviceKey = (service: ServiceObject) => `${service.metadata.namespace ?? "default"}/${service.metadata.name}`;

export function planBgpAnnouncements(input: BgpAnnouncementInput, options: BgpAnnouncementOptions): BgpAnnouncementResult {
  const { context, configErrors } = compileBgpConfig(input, options);
  return { ...planServices(input.services, input.endpointSlices, context, options), configErrors };
}
