// MetalLB's rule for bad configuration, per object: an object that fails validation does not take effect, and
// the last valid version of it keeps serving (none if it never was valid), so a typo in one BGPAdvertisement
// neither withdraws its routes nor touches anything else. Pure: the caller keeps the map between calls.
import {
  type BgpAnnouncementInput,
  type BgpAnnouncementOptions,
  type BgpAnnouncementResult,
  type BgpConfigError,
  type BgpConfigInput,
  type BgpPlanContext,
  compileBgpConfig,
  planServices,
} from "./announce.ts";

type Kind = BgpConfigError["kind"];
type Named = { metadata: { name: string; namespace?: string } };

const FIELDS: Record<Kind, "pools" | "peers" | "advertisements" | "communities"> = {
  IPAddressPool: "pools",
  BGPPeer: "peers",
  BGPAdvertisement: "advertisements",
  Community: "communities",
};

const keyOf = (kind: Kind, o: Named) => `${kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

/** The last valid version of each configuration object, by "kind/namespace/name". */
export type LastGood = ReadonlyMap<string, unknown>;

/**
 * The configuration in effect: each invalid object replaced by its last valid version (or left out), compiled.
 * `configErrors` are those of the objects as they are, `kept` the keys of objects whose last valid version serves.
 */
export function configWithLastGood<T extends BgpConfigInput>(
  input: T,
  options: BgpAnnouncementOptions,
  lastGood: LastGood,
): { context: BgpPlanContext; configErrors: BgpConfigError[]; effective: T; lastGood: LastGood; kept: string[] } {
  const first = compileBgpConfig(input, options);
  const bad = new Set(first.configErrors.map((e) => `${e.kind}/${e.namespace}/${e.name}`));
  const next = new Map<string, unknown>();
  const kept: string[] = [];
  const effective = { ...input };
  for (const [kind, field] of Object.entries(FIELDS) as [Kind, (typeof FIELDS)[Kind]][]) {
    const objects: Named[] = [];
    for (const object of input[field] as readonly Named[]) {
      const key = keyOf(kind, object);
      if (!bad.has(key)) {
        next.set(key, object);
        objects.push(object);
        continue;
      }
      const previous = lastGood.get(key) as Named | undefined;
      if (previous === undefined) continue;
      next.set(key, previous);
      objects.push(previous);
      kept.push(key);
    }
    (effective as Record<string, unknown>)[field] = objects;
  }
  if (bad.size === 0) return { context: first.context, configErrors: first.configErrors, effective, lastGood: next, kept };
  return { context: compileBgpConfig(effective, options).context, configErrors: first.configErrors, effective, lastGood: next, kept: kept.sort() };
}

export function planWithLastGood(
  input: BgpAnnouncementInput,
  options: BgpAnnouncementOptions,
  lastGood: LastGood,
): { result: BgpAnnouncementResult; effective: BgpAnnouncementInput; lastGood: LastGood; kept: string[] } {
  const config = configWithLastGood(input, options, lastGood);
  const planned = planServices(input.services, input.endpointSlices, config.context, options);
  return { result: { ...planned, configErrors: config.configErrors }, effective: config.effective, lastGood: config.lastGood, kept: config.kept };
}
