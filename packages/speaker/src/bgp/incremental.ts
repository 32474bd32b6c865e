// The BGP plan kept between reconciles, so that a change recomputes only the Services it affects. The result is
// the full recompute's (planWithLastGood) every time — the differential test holds it to that — only cheaper:
//
// - Each Service's plan is cached with what it read: its Service object, its EndpointSlices, the configuration
//   "base" (pools, BGPPeers, eligible Nodes) and, per pool its addresses fell in, that pool's advertisements.
// - A Service or EndpointSlice change replans that Service only. Objects are compared by identity (informers
//   and the API give a changed object as a new one) or, after a relist, by resourceVersion.
// - A BGPAdvertisement or Community change replans only the Services in the pools whose advertisements changed
//   (compared by content, so an edit that changes nothing compiled replans nothing).
// - A change of the pools, the BGPPeers' names and nodeSelectors, or the Nodes' labels and NetworkUnavailable
//   (what decides a node's eligibility) affects every Service: it replans all of them. Node changes the plan
//   does not read (addresses, other conditions) replan nothing.
// The configuration itself is compiled on every run: it is small next to the Services.
import type { EndpointSliceObject, ServiceObject } from "../election/objects.ts";
import { slicesByService } from "../election/objects.ts";
import {
  type BgpAnnouncement,
  type BgpAnnouncementInput,
  type BgpAnnouncementOptions,
  type BgpAnnouncementResult,
  type BgpNotAnnounced,
  type BgpPlanContext,
  type CompiledAdvertisement,
  type CompiledPool,
  planServiceBgp,
  serviceKey,
  type ServiceBgpPlan,
} from "./announce.ts";
import { configWithLastGood, type LastGood } from "./last-good.ts";

type Versioned = { metadata: { resourceVersion?: string } };

/** The same object: the same reference, or the same resourceVersion (a relist gives new references). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const va = (a as Versioned).metadata?.resourceVersion;
  return va !== undefined && va === (b as Versioned).metadata?.resourceVersion;
}

function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
  return true;
}

interface Entry {
  service: ServiceObject;
  slices: readonly EndpointSliceObject[];
  base: BgpPlanContext;
  /** The advertisement lists of the pools the plan read, as they were. */
  read: readonly (readonly CompiledAdvertisement[])[];
  plan: ServiceBgpPlan | null;
}

/** How much the last run replanned: for tests and logs. */
export interface PlannerStats {
  services: number;
  replanned: number;
  /** Why the whole plan was recomputed, when it was. */
  full: string | null;
}

export class IncrementalBgpPlanner {
  #options: BgpAnnouncementOptions;
  #lastGood: LastGood = new Map();
  #base: BgpPlanContext | null = null;
  #baseSignature = "";
  /** Per pool name: its advertisements' compiled content and the list the context holds for it. */
  #applying = new Map<string, { signature: string; list: readonly CompiledAdvertisement[] }>();
  #entries = new Map<string, Entry>();
  stats: PlannerStats = { services: 0, replanned: 0, full: null };

  constructor(options: BgpAnnouncementOptions) {
    this.#options = options;
  }

  plan(input: BgpAnnouncementInput): { result: BgpAnnouncementResult; effective: BgpAnnouncementInput; kept: string[] } {
    const config = configWithLastGood(input, this.#options, this.#lastGood);
    this.#lastGood = config.lastGood;
    const fresh = config.context;
    const signature = JSON.stringify([
      fresh.pools.map((p) => [p.name, p.labels, p.ranges.map((r) => [r.family, String(r.first), String(r.last)])]),
      fresh.peers,
      fresh.eligibleNodes.map((n) => [n.metadata.name, n.metadata.labels ?? {}]),
    ]);
    let full: string | null = null;
    if (this.#base === null || signature !== this.#baseSignature) {
      full = this.#base === null ? "first run" : "pools, BGPPeers or eligible Nodes changed";
      this.#base = { pools: fresh.pools, peers: fresh.peers, eligibleNodes: fresh.eligibleNodes, applying: new Map() };
      this.#baseSignature = signature;
      this.#applying.clear();
      this.#entries.clear();
    }
    // The base's pools, with each pool's advertisements: the previous list where its content is unchanged.
    const base = this.#base;
    const applying = new Map<CompiledPool, readonly CompiledAdvertisement[]>();
    const seen = new Set<string>();
    base.pools.forEach((pool, i) => {
      const list = fresh.applying.get(fresh.pools[i] as CompiledPool) ?? [];
      const content = JSON.stringify(list);
      const previous = this.#applying.get(pool.name);
      if (previous !== undefined && previous.signature === content) applying.set(pool, previous.list);
      else {
        this.#applying.set(pool.name, { signature: content, list });
        applying.set(pool, list);
      }
      seen.add(pool.name);
    });
    for (const name of this.#applying.keys()) if (!seen.has(name)) this.#applying.delete(name);
    const context: BgpPlanContext = { ...base, applying };

    const slices = slicesByService(input.endpointSlices);
    const announcements: BgpAnnouncement[] = [];
    const notAnnounced: BgpNotAnnounced[] = [];
    const present = new Set<string>();
    let replanned = 0;
    for (const service of input.services) {
      const key = serviceKey(service);
      present.add(key);
      const own = slices.get(key) ?? [];
      let entry = this.#entries.get(key);
      const valid =
        entry !== undefined &&
        entry.base === base &&
        same(entry.service, service) &&
        sameList(entry.slices, own) &&
        (entry.plan?.pools ?? []).every((pool, i) => applying.get(pool) === entry?.read[i]);
      if (!valid) {
        const plan = planServiceBgp(service, own, context, this.#options);
        entry = { service, slices: own, base, read: (plan?.pools ?? []).map((p) => applying.get(p) ?? []), plan };
        this.#entries.set(key, entry);
        replanned++;
      }
      const plan = (entry as Entry).plan;
      if (plan === null) continue;
      for (const a of plan.announcements) announcements.push(a);
      for (const n of plan.notAnnounced) notAnnounced.push(n);
    }
    for (const key of this.#entries.keys()) if (!present.has(key)) this.#entries.delete(key);
    this.stats = { services: input.services.length, replanned, full };
    return { result: { announcements, notAnnounced, configErrors: config.configErrors }, effective: config.effective, kept: config.kept };
  }
}
