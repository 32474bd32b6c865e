// What a speaker announces, and how a table of routes becomes UPDATE messages (pure).
import { familyOf, type Prefix, parsePrefix } from "../message/address.ts";
import { Afi, MAX_MESSAGE_LENGTH, Safi } from "../message/constants.ts";
import { encodeMessage } from "../message/encode.ts";
import type { LargeCommunity, PathAttributes, UpdateContext, UpdateMessage } from "../message/types.ts";

/** One announced prefix and the attributes it goes out with. */
export type Route = {
  prefix: Prefix;
  /** The next hop; without one, the session's own local address of the prefix's family. */
  nextHop?: string;
  /** Sent to internal peers only (RFC 4271 §5.1.5); MetalLB's BGPAdvertisement.localPref. */
  localPref?: number;
  communities?: number[];
  largeCommunities?: LargeCommunity[];
};

export type OutboundContext = UpdateContext & {
  localAsn: number;
  /** The session's own addresses, the default next hops. */
  localAddresses: { ipv4?: string; ipv6?: string };
  /** Families the OPEN exchange agreed on; routes of other families are not sent. */
  families: { afi: number; safi: number }[];
};

/** RFC 4271 §5.1.5: an internal peer always gets a LOCAL_PREF; 100 is the customary default. */
export const DEFAULT_LOCAL_PREF = 100;

function attributesOf(route: Route, family: 4 | 6, out: OutboundContext): PathAttributes | undefined {
  const nextHop = route.nextHop ?? (family === 4 ? out.localAddresses.ipv4 : out.localAddresses.ipv6);
  if (nextHop === undefined || familyOf(nextHop) !== family) return undefined;
  const attributes: PathAttributes = {
    origin: "igp",
    asPath: out.external ? [{ type: "sequence", asns: [out.localAsn] }] : [],
  };
  if (family === 4) attributes.nextHop = nextHop;
  else attributes.mpReach = { afi: Afi.ipv6, safi: Safi.unicast, nextHops: [nextHop], nlri: [] };
  if (!out.external) attributes.localPref = route.localPref ?? DEFAULT_LOCAL_PREF;
  if (route.communities?.length) attributes.communities = [...new Set(route.communities)].sort((a, b) => a - b);
  if (route.largeCommunities?.length) attributes.largeCommunities = route.largeCommunities;
  return attributes;
}

const negotiatedFamily = (out: OutboundContext, family: 4 | 6) =>
  out.families.some((f) => f.afi === (family === 4 ? Afi.ipv4 : Afi.ipv6) && f.safi === Safi.unicast);

export type UpdatePlan = { updates: UpdateMessage[]; skipped: { prefix: Prefix; reason: string }[] };

/**
 * The UPDATEs that announce `announce` and withdraw `withdraw`: routes sharing attributes share a message,
 * and no message exceeds 4096 octets. Routes that cannot be sent (family not negotiated, no next hop of their
 * family) are listed in `skipped`.
 */
export function planUpdates(announce: Route[], withdraw: Prefix[], out: OutboundContext): UpdatePlan {
  const updates: UpdateMessage[] = [];
  const skipped: UpdatePlan["skipped"] = [];
  const withdraw4: Prefix[] = [];
  const withdraw6: Prefix[] = [];
  for (const prefix of withdraw) {
    const family = parsePrefix(prefix).family;
    if (!negotiatedFamily(out, family)) continue;
    (family === 4 ? withdraw4 : withdraw6).push(prefix);
  }
  for (const batch of chunk(withdraw4, out, (list) => ({ type: "update", withdrawn: list, attributes: {}, nlri: [] }))) updates.push(batch);
  for (const batch of chunk(withdraw6, out, (list) => ({ type: "update", withdrawn: [], attributes: { mpUnreach: { afi: Afi.ipv6, safi: Safi.unicast, withdrawn: list } }, nlri: [] }))) {
    updates.push(batch);
  }
  const groups = new Map<string, { attributes: PathAttributes; family: 4 | 6; prefixes: Prefix[] }>();
  for (const route of announce) {
    const family = parsePrefix(route.prefix).family;
    if (!negotiatedFamily(out, family)) {
      skipped.push({ prefix: route.prefix, reason: `IPv${family} unicast was not negotiated with the peer` });
      continue;
    }
    const attributes = attributesOf(route, family, out);
    if (!attributes) {
      skipped.push({ prefix: route.prefix, reason: `no IPv${family} next hop` });
      continue;
    }
    const key = JSON.stringify([family, attributes]);
    const group = groups.get(key) ?? { attributes, family, prefixes: [] };
    group.prefixes.push(route.prefix);
    groups.set(key, group);
  }
  for (const { attributes, family, prefixes } of groups.values()) {
    const make = (list: Prefix[]): UpdateMessage =>
      family === 4
        ? { type: "update", withdrawn: [], attributes, nlri: list }
        : { type: "update", withdrawn: [], attributes: { ...attributes, mpReach: { ...(attributes.mpReach as NonNullable<PathAttributes["mpReach"]>), nlri: list } }, nlri: [] };
    updates.push(...chunk(prefixes, out, make));
  }
  return { updates, skipped };
}

/** Splits a prefix list into as few messages as fit in 4096 octets each. */
function chunk(prefixes: Prefix[], context: UpdateContext, make: (list: Prefix[]) => UpdateMessage): UpdateMessage[] {
  if (prefixes.length === 0) return [];
  const overhead = encodeMessage(make([]), context).length;
  const messages: UpdateMessage[] = [];
  let list: Prefix[] = [];
  let size = overhead;
  for (const prefix of prefixes) {
    const bytes = 1 + ((parsePrefix(prefix).length + 7) >> 3);
    // MP attributes take an extended length once they pass 255 octets: one more octet, counted up front.
    if (size + bytes + 1 > MAX_MESSAGE_LENGTH && list.length > 0) {
      messages.push(make(list));
      list = [];
      size = overhead;
    }
    list.push(prefix);
    size += bytes;
  }
  messages.push(make(list));
  return messages;
}

/** RFC 4724 End-of-RIB: an empty UPDATE for IPv4, an empty MP_UNREACH_NLRI for the other families. */
export function endOfRib(family: { afi: number; safi: number }): UpdateMessage {
  if (family.afi === Afi.ipv4 && family.safi === Safi.unicast) return { type: "update", withdrawn: [], attributes: {}, nlri: [] };
  return { type: "update", withdrawn: [], attributes: { mpUnreach: { afi: family.afi, safi: family.safi, withdrawn: [] } }, nlri: [] };
}
