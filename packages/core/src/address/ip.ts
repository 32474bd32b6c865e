/** An IP address as a number: IPv4 in [0, 2^32), IPv6 in [0, 2^128). */
export type IPAddress = { family: 4 | 6; value: bigint };

export type IPFamily = 4 | 6;

/** Input that is not an IP address, CIDR or range; `input` is the text as given. */
export class AddressParseError extends Error {
  override name = "AddressParseError";
  readonly input: string;
  readonly reason: string;
  constructor(input: string, reason: string) {
    super(`invalid address ${JSON.stringify(input)}: ${reason}`);
    this.input = input;
    this.reason = reason;
  }
}

export const MAX_IPV4 = (1n << 32n) - 1n;
export const MAX_IPV6 = (1n << 128n) - 1n;

export function maxValue(family: IPFamily): bigint {
  return family === 4 ? MAX_IPV4 : MAX_IPV6;
}

export function bitLength(family: IPFamily): number {
  return family === 4 ? 32 : 128;
}

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * Parses dotted-quad IPv4 or RFC 4291 IPv6 text. Leading zeros in IPv4 octets are refused (they
 * are read as octal by some tools, so their meaning is ambiguous), and so are IPv6 zones, which
 * name an interface and have no place in a pool or a Service.
 */
export function parseIP(text: string): IPAddress {
  if (typeof text !== "string") throw new AddressParseError(String(text), "not a string");
  if (text.includes(":")) return { family: 6, value: parseIPv6(text, text) };
  return { family: 4, value: parseIPv4(text, text) };
}

function parseIPv4(part: string, input: string): bigint {
  const octets = part.split(".");
  if (octets.length !== 4) throw new AddressParseError(input, "an IPv4 address has four dot-separated numbers");
  let value = 0n;
  for (const octet of octets) {
    if (!DECIMAL_OCTET.test(octet)) {
      const reason = /^[0-9]+$/.test(octet)
        ? `octet ${JSON.stringify(octet)} has a leading zero`
        : `octet ${JSON.stringify(octet)} is not a decimal number`;
      throw new AddressParseError(input, reason);
    }
    const n = Number(octet);
    if (n > 255) throw new AddressParseError(input, `octet ${octet} is above 255`);
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseIPv6(text: string, input: string): bigint {
  if (text.includes("%")) throw new AddressParseError(input, "IPv6 zones (%...) are not accepted");
  const halves = text.split("::");
  if (halves.length > 2) throw new AddressParseError(input, `"::" may appear only once`);
  const head = halves[0] === "" ? [] : (halves[0] as string).split(":");
  if (halves.length === 1) {
    const groups = parseGroups(head, input, true);
    if (groups.length !== 8) throw new AddressParseError(input, "an IPv6 address without '::' has eight groups");
    return joinGroups(groups);
  }
  const tail = halves[1] === "" ? [] : (halves[1] as string).split(":");
  const before = parseGroups(head, input, false);
  const after = parseGroups(tail, input, true);
  const zeros = 8 - before.length - after.length;
  if (zeros < 1) throw new AddressParseError(input, "too many groups for '::' to stand for any");
  return joinGroups([...before, ...Array<bigint>(zeros).fill(0n), ...after]);
}

function joinGroups(groups: bigint[]): bigint {
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Hex groups; an embedded IPv4 address is allowed only as the address's last part. */
function parseGroups(parts: string[], input: string, mayEndInIPv4: boolean): bigint[] {
  const groups: bigint[] = [];
  parts.forEach((part, i) => {
    if (part.includes(".")) {
      if (!mayEndInIPv4 || i !== parts.length - 1) {
        throw new AddressParseError(input, "an embedded IPv4 address must be the last part");
      }
      const v4 = parseIPv4(part, input);
      groups.push(v4 >> 16n, v4 & 0xffffn);
      return;
    }
    if (!HEX_GROUP.test(part)) {
      const reason = part === "" ? "empty group" : `group ${JSON.stringify(part)} is not 1-4 hex digits`;
      throw new AddressParseError(input, reason);
    }
    groups.push(BigInt(`0x${part}`));
  });
  return groups;
}

/** IPv4 as dotted quad; IPv6 in RFC 5952 canonical form (IPv4-mapped addresses as ::ffff:a.b.c.d). */
export function formatIP(ip: IPAddress): string {
  assertInFamily(ip);
  if (ip.family === 4) return formatIPv4(ip.value);
  if (ip.value >> 32n === 0xffffn) return `::ffff:${formatIPv4(ip.value & MAX_IPV4)}`;
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((ip.value >> shift) & 0xffffn));
  // RFC 5952 4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => ((value >> s) & 0xffn).toString()).join(".");
}

function assertInFamily(ip: IPAddress): void {
  if ((ip.family !== 4 && ip.family !== 6) || ip.value < 0n || ip.value > maxValue(ip.family)) {
    throw new RangeError(`not an IPv${ip.family} address value: ${ip.value}`);
  }
}

/** Orders IPv4 before IPv6, then by value. */
export function compareIP(a: IPAddress, b: IPAddress): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** The following address, or undefined after the family's last address. */
export function nextIP(ip: IPAddress): IPAddress | undefined {
  return ip.value >= maxValue(ip.family) ? undefined : { family: ip.family, value: ip.value + 1n };
}

/** The preceding address, or undefined before the family's first address. */
export function prevIP(ip: IPAddress): IPAddress | undefined {
  return ip.value <= 0n ? undefined : { family: ip.family, value: ip.value - 1n };
}
