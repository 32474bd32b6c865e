// Rate and connection limits per client address.
import { parseCidrList } from "./access.ts";
import type { LimitPolicy } from "./policy.ts";
import type { PolicyReader } from "./read.ts";

/** The largest rate or connection count accepted (a larger one limits nothing a single client could send). */
const MAX_LIMIT = 1_000_000;

/** Reads: limit-rps, limit-rpm, limit-burst-multiplier, limit-connections, limit-allowlist (limit-whitelist). */
export const readLimits: PolicyReader = (read) => {
  // 0 means "no limit", as in ingress-nginx
  const rps = read.int("limit-rps", 0, 0, MAX_LIMIT);
  const rpm = read.int("limit-rpm", 0, 0, MAX_LIMIT);
  const connections = read.int("limit-connections", 0, 0, MAX_LIMIT);
  const burstMultiplier = read.int("limit-burst-multiplier", 5, 0, 1000);
  const own = read.value("limit-allowlist");
  const old = read.value("limit-whitelist");
  if (own !== undefined && old !== undefined) read.differs("limit-whitelist", "ignored: limit-allowlist is also set and takes precedence (as in ingress-nginx)");
  const allowName = own !== undefined ? "limit-allowlist" : "limit-whitelist";
  let allowlist: string[] = [];
  const allowValue = own ?? old;
  if (allowValue !== undefined) {
    const parsed = parseCidrList(allowValue);
    // Exempting fewer clients is the safe side: nobody is exempted until the list is fixed.
    if ("error" in parsed) read.invalid(allowName, `${parsed.error}; no address is exempted`);
    else allowlist = parsed.cidrs;
  }
  if (rps === 0 && rpm === 0 && connections === 0) return {};
  const limits: LimitPolicy = Object.freeze({
    rps: rps === 0 ? null : rps,
    rpm: rpm === 0 ? null : rpm,
    burstMultiplier,
    connections: connections === 0 ? null : connections,
    allowlist: Object.freeze(allowlist),
    status: read.context.globals.limitReqStatusCode,
  });
  return { limits };
};
