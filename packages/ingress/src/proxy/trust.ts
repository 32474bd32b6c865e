import { BlockList, isIPv4, isIPv6 } from "node:net";

/** A CIDR in `--trusted-proxies` that is not one. */
export class InvalidCidrError extends Error {
  override name = "InvalidCidrError";
  readonly cidr: string;
  constructor(cidr: string) {
    super(`"${cidr}" is not an IPv4 or IPv6 CIDR (like 10.0.0.0/8 or fd00::/8)`);
    this.cidr = cidr;
  }
}

export interface TrustedProxies {
  /** whether an address may set X-Forwarded-* for us */
  has(address: string): boolean;
}

export function parseTrustedProxies(cidrs: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = "", bits] = cidr.split("/");
    const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : null;
    const max = family === "ipv4" ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (family === null || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
      throw new InvalidCidrError(cidr);
    }
    list.addSubnet(address, prefix, family);
  }
  const empty = cidrs.length === 0;
  return {
    has(address) {
      if (empty) return false;
      const plain = unmapIPv4(address);
      if (isIPv4(plain)) return list.check(plain, "ipv4");
      return isIPv6(plain) && list.check(plain, "ipv6");
    },
  };
}

/** `::ffff:10.0.0.1` (a dual-stack socket's view of an IPv4 peer) → `10.0.0.1`. */
function unmapIPv4(address: string): string {
  return address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
