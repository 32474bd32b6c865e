// The L2 election (MetalLB-compatible): for each Service address, every speaker computes the same
// announcing node from the same snapshot, with no coordination beyond knowing who is alive.
import { createHash } from "node:crypto";
import { formatIP, type LabelSelector, loadPools, type Pool, parseIP, parseLabelSelector, poolContaining, selectorMatches } from "@bollard/core";
import { type EndpointSliceObject, type IPAddressPoolObject, type L2AdvertisementObject, type NodeObject, type ServiceObject, slicesByService } from "./objects.ts";

export const EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";

export interface ElectionInput {
  nodes: readonly NodeObject[];
  /** Nodes whose speaker is alive; null means every Node (as when membership is not known). */
  liveSpeakers: ReadonlySet<string> | null;
  services: readonly ServiceObject[];
  endpointSlices: readonly EndpointSliceObject[];
  pools: readonly IPAddressPoolObject[];
  advertisements: readonly L2AdvertisementObject[];
  /**
   * The pools of the last valid pool configuration, used while `pools` is invalid (as the controller keeps
   * its last good configuration, so both keep agreeing on which pool holds an address). The shell keeps
   * them from `ElectionResult.pools`; offline there are none.
   */
  lastGoodPools?: readonly Pool[];
}

export interface ElectionOptions {
  /** Let nodes labelled exclude-from-external-load-balancers announce anyway. */
  ignoreExcludeLB: boolean;
  /** The spec.loadBalancerClass this speaker serves; null serves Services that name none. */
  loadBalancerClass: string | null;
}

export interface Announcement {
  namespace: string;
  name: string;
  ip: string;
  /** The announcing node, or null when nobody announces (then `reason` says why). */
  node: string | null;
  reason?: string;
  pool?: string;
  /** Eligible nodes in election order; the first one announces. */
  candidates: string[];
  /** Interfaces the announcing node answers on: "all" eligible ones, or the named ones. */
  interfaces?: "all" | string[];
}

/** One configuration object the election had to leave out, and why. */
export interface L2ConfigError {
  kind: "IPAddressPool" | "L2Advertisement";
  namespace: string;
  name: string;
  message: string;
}

export interface ElectionResult {
  announcements: Announcement[];
  configErrors: L2ConfigError[];
  /** The pools `pools` loaded to, or null when that configuration is invalid (then `lastGoodPools` served). */
  pools: readonly Pool[] | null;
}

interface Advertisement {
  name: string;
  poolNames: readonly string[];
  poolSelectors: readonly LabelSelector[];
  nodeSelectors: readonly LabelSelector[];
  serviceSelectors: readonly LabelSelector[];
  interfaces: readonly string[];
}

/** The one pool loader the controller uses too: all pools valid (no overlaps), or the errors. */
function compilePools(input: ElectionInput, errors: L2ConfigError[]): { pools: readonly Pool[]; loaded: readonly Pool[] | null } {
  const result = loadPools(input.pools);
  if ("pools" in result) return { pools: result.pools, loaded: result.pools };
  for (const error of result.errors) {
    errors.push({ kind: "IPAddressPool", namespace: error.namespace, name: error.pool, message: error.message });
  }
  return { pools: input.lastGoodPools ?? [], loaded: null };
}

function compileAdvertisements(objects: readonly L2AdvertisementObject[], errors: L2ConfigError[]): Advertisement[] {
  const advertisements: Advertisement[] = [];
  for (const object of objects) {
    const { name, namespace = "" } = object.metadata;
    const spec = object.spec ?? {};
    // Selectors are validated here, so a bad one leaves the advertisement out (as MetalLB refuses it)
    // rather than failing in the middle of an election.
    const problems: string[] = [];
    const selectors = (field: "ipAddressPoolSelectors" | "nodeSelectors" | "serviceSelectors"): LabelSelector[] =>
      (spec[field] ?? []).flatMap((raw, i) => {
        const result = parseLabelSelector(raw);
        if ("selector" in result) return [result.selector];
        for (const problem of result.problems) problems.push(`spec.${field}[${i}]${problem.path === "" ? "" : `.${problem.path}`}: ${problem.message}`);
        return [];
      });
    const poolSelectors = selectors("ipAddressPoolSelectors");
    const nodeSelectors = selectors("nodeSelectors");
    const serviceSelectors = selectors("serviceSelectors");
    if (problems.length > 0) {
      errors.push({ kind: "L2Advertisement", namespace, name, message: problems.join("; ") });
      continue;
    }
    advertisements.push({ name, poolNames: spec.ipAddressPools ?? [], poolSelectors, nodeSelectors, serviceSelectors, interfaces: spec.interfaces ?? [] });
  }
  return advertisements;
}

/** An advertisement naming neither pools nor pool selectors applies to every pool. */
function selectsPool(advertisement: Advertisement, pool: Pool): boolean {
  if (advertisement.poolNames.length === 0 && advertisement.poolSelectors.length === 0) return true;
  return advertisement.poolNames.includes(pool.name) || advertisement.poolSelectors.some((s) => selectorMatches(s, pool.labels));
}

/** MetalLB v0.16's serviceSelectors: without any, every Service; otherwise any selector may match its labels. */
function selectsService(advertisement: Advertisement, service: ServiceObject): boolean {
  if (advertisement.serviceSelectors.length === 0) return true;
  return advertisement.serviceSelectors.some((s) => selectorMatches(s, service.metadata.labels ?? {}));
}

/** An advertisement without node selectors applies to every node; otherwise any selector may match. */
function selectsNode(advertisement: Advertisement, node: NodeObject): boolean {
  if (advertisement.nodeSelectors.length === 0) return true;
  return advertisement.nodeSelectors.some((s) => selectorMatches(s, node.metadata.labels ?? {}));
}

function isNetworkUnavailable(node: NodeObject): boolean {
  return (node.status?.conditions ?? []).some((c) => c.type === "NetworkUnavailable" && c.status === "True");
}

/** Ready, or serving while terminating: MetalLB's test for an endpoint that can take traffic. */
function endpointCanServe(conditions: { ready?: boolean | null; serving?: boolean | null } | undefined): boolean {
  if (conditions?.ready === undefined || conditions.ready === null || conditions.ready) return true;
  return conditions.serving === true;
}

function electionOrder(nodes: string[], key: string): string[] {
  const hashed = nodes.map((node) => ({ node, hash: createHash("sha256").update(`${node}#${key}`).digest() }));
  hashed.sort((a, b) => Buffer.compare(a.hash, b.hash));
  return hashed.map((h) => h.node);
}

function parsed(ip: string): { text: string; ip: ReturnType<typeof parseIP> } | null {
  try {
    const value = parseIP(ip);
    return { text: formatIP(value), ip: value };
  } catch {
    return null;
  }
}

/** Elects the announcing node of every (LoadBalancer Service, ingress IP), in input order. */
export function electAnnouncers(input: ElectionInput, options: ElectionOptions): ElectionResult {
  const configErrors: L2ConfigError[] = [];
  const { pools, loaded } = compilePools(input, configErrors);
  const advertisements = compileAdvertisements(input.advertisements, configErrors);
  const announcements: Announcement[] = [];
  const slices = slicesByService(input.endpointSlices);

  for (const service of input.services) {
    if (service.spec?.type !== "LoadBalancer") continue;
    const ips = (service.status?.loadBalancer?.ingress ?? []).flatMap((ingress) => (ingress.ip ? [ingress.ip] : []));
    if (ips.length === 0) continue;
    const namespace = service.metadata.namespace ?? "default";
    const name = service.metadata.name;
    const nobody = (ip: string, reason: string, pool?: string): Announcement => ({
      namespace,
      name,
      ip,
      node: null,
      reason,
      ...(pool === undefined ? {} : { pool }),
      candidates: [],
    });

    const serviceClass = service.spec.loadBalancerClass ?? null;
    if (serviceClass !== options.loadBalancerClass) {
      const reason = `spec.loadBalancerClass ${JSON.stringify(serviceClass)} is not handled by this speaker`;
      for (const ip of ips) announcements.push(nobody(ip, reason));
      continue;
    }

    const endpoints = (slices.get(`${namespace}/${name}`) ?? [])
      .flatMap((s) => s.endpoints ?? [])
      .filter((e) => endpointCanServe(e.conditions));
    const nodesWithEndpoint = new Set(endpoints.flatMap((e) => (e.nodeName ? [e.nodeName] : [])));
    const local = service.spec.externalTrafficPolicy === "Local";
    // The first ingress IP is the key for every address of the Service, so both families of a
    // dual-stack Service, and Services sharing an address, land on one node.
    // Each address is parsed once per run: parsing (BigInt) was the largest part of a run at 1,000 Services.
    const addresses = ips.map(parsed);
    const key = addresses[0]?.text ?? (ips[0] as string);

    for (const [i, rawIp] of ips.entries()) {
      const address = addresses[i];
      if (address === null || address === undefined) {
        announcements.push(nobody(rawIp, `status.loadBalancer.ingress ip ${JSON.stringify(rawIp)} is not an IP address`));
        continue;
      }
      const ip = address.text;
      const pool = poolContaining(pools, address.ip);
      if (pool === undefined) {
        announcements.push(nobody(ip, "no IPAddressPool contains the address"));
        continue;
      }
      const poolAdvertisements = advertisements.filter((a) => selectsPool(a, pool));
      if (poolAdvertisements.length === 0) {
        announcements.push(nobody(ip, `no L2Advertisement selects IPAddressPool ${JSON.stringify(pool.name)}`, pool.name));
        continue;
      }
      // Only the advertisements whose serviceSelectors admit the Service count from here on: for the
      // nodes that may announce and for the interfaces (MetalLB v0.16, which fixed its own election to do so).
      const serviceAdvertisements = poolAdvertisements.filter((a) => selectsService(a, service));
      if (serviceAdvertisements.length === 0) {
        announcements.push(nobody(ip, `no L2Advertisement of IPAddressPool ${JSON.stringify(pool.name)} selects the Service (spec.serviceSelectors)`, pool.name));
        continue;
      }
      if (endpoints.length === 0) {
        announcements.push(nobody(ip, "no ready endpoints", pool.name));
        continue;
      }
      let eligible = input.nodes.filter(
        (node) =>
          (input.liveSpeakers === null || input.liveSpeakers.has(node.metadata.name)) &&
          !isNetworkUnavailable(node) &&
          (options.ignoreExcludeLB || !Object.hasOwn(node.metadata.labels ?? {}, EXCLUDE_FROM_LB_LABEL)) &&
          serviceAdvertisements.some((a) => selectsNode(a, node)),
      );
      if (eligible.length === 0) {
        announcements.push(nobody(ip, "no live speaker on a node that an L2Advertisement selects", pool.name));
        continue;
      }
      if (local) {
        eligible = eligible.filter((node) => nodesWithEndpoint.has(node.metadata.name));
        if (eligible.length === 0) {
          announcements.push(nobody(ip, "externalTrafficPolicy Local: no eligible node has a ready endpoint", pool.name));
          continue;
        }
      }
      const candidates = electionOrder(
        eligible.map((n) => n.metadata.name),
        key,
      );
      const winner = candidates[0] as string;
      const winnerNode = eligible.find((n) => n.metadata.name === winner) as NodeObject;
      const winnerAdvertisements = serviceAdvertisements.filter((a) => selectsNode(a, winnerNode));
      const interfaces = winnerAdvertisements.some((a) => a.interfaces.length === 0)
        ? "all"
        : [...new Set(winnerAdvertisements.flatMap((a) => a.interfaces))].sort();
      announcements.push({ namespace, name, ip, node: winner, pool: pool.name, candidates, interfaces });
    }
  }
  return { announcements, configErrors, pools: loaded };
}
