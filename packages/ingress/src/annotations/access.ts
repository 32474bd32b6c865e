// Source address allow and deny lists (security: invalid values refuse).
import { isIPv4, isIPv6 } from "node:net";
import type { AccessPolicy } from "./policy.ts";
import type { AnnotationReader, PolicyReader } from "./read.ts";

/**
 * A comma-separated list of CIDRs or single addresses (IPv4 or IPv6), as the data plane parses them: the entries,
 * or the first entry that is not one (an empty list is an error too: it names nothing to match).
 */
export function parseCidrList(value: string): { cidrs: string[] } | { error: string } {
  const cidrs = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (cidrs.length === 0) return { error: "names no address or CIDR" };
  for (const cidr of cidrs) {
    if (!isCidr(cidr)) return { error: `"${cidr}" is not an IPv4 or IPv6 address or CIDR (like 10.0.0.0/8, 192.0.2.1 or fd00::/8)` };
  }
  return { cidrs };
}

function isCidr(text: string): boolean {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  // (a zone index, `fe80::1%eth0`, names no address a client can come from)
  if (address.includes("%")) return false;
  const max = isIPv4(address) ? 32 : isIPv6(address) ? 128 : 0;
  if (max === 0) return false;
  if (slash < 0) return true;
  const bits = text.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}

/**
 * The list of `name`, or of its older spelling `alias` when only that is set (ingress-nginx reads the new name
 * first); null when neither is set. An invalid list is reported on the annotation that was used.
 */
export function readCidrs(read: AnnotationReader, name: string, alias: string): { cidrs: string[] } | { invalid: true } | null {
  const own = read.value(name);
  const old = read.value(alias);
  if (own !== undefined && old !== undefined) read.differs(alias, `ignored: ${name} is also set and takes precedence (as in ingress-nginx)`);
  const used = own !== undefined ? name : alias;
  const value = own ?? old;
  if (value === undefined) return null;
  const parsed = parseCidrList(value);
  if ("error" in parsed) {
    read.invalid(used, parsed.error);
    return { invalid: true };
  }
  return parsed;
}

/** Reads: allowlist-source-range, whitelist-source-range, denylist-source-range. */
export const readAccess: PolicyReader = (read) => {
  const allow = readCidrs(read, "allowlist-source-range", "whitelist-source-range");
  const denyValue = read.value("denylist-source-range");
  let deny: string[] = [];
  if (denyValue !== undefined) {
    const parsed = parseCidrList(denyValue);
    if ("error" in parsed) read.invalid("denylist-source-range", parsed.error);
    else deny = parsed.cidrs;
  }
  // (an invalid list refuses the whole Ingress through `read.invalid`: nothing is served with part of a list)
  const allowCidrs = allow !== null && "cidrs" in allow ? allow.cidrs : [];
  if (allowCidrs.length === 0 && deny.length === 0) return {};
  const access: AccessPolicy = Object.freeze({ allow: Object.freeze(allowCidrs), deny: Object.freeze(deny) });
  return { access };
};
