import { AddressParseError, bitLength, compareIP, formatIP, type IPAddress, type IPFamily, maxValue, parseIP } from "./ip.ts";

/** A CIDR block: `network` has no host bits set. */
export type CIDR = { family: IPFamily; network: bigint; prefixLength: number; source: string };

/** An inclusive range of addresses of one family, with the text it was parsed from. */
export type AddressRange = { family: IPFamily; first: bigint; last: bigint; source: string };

const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Parses `address/prefixLength`. Host bits are cleared rather than refused (`10.0.0.7/24` is
 * 10.0.0.0/24), as Go's net.ParseCIDR — and so MetalLB — reads pool addresses.
 */
export function parseCIDR(text: string): CIDR {
  const parts = text.trim().split("/");
  if (parts.length === 1) {
    const single = parseWithin(text, text);
    const hint = `${formatIP(single)}/${bitLength(single.family)}`;
    throw new AddressParseError(text, `missing /prefix-length (a single address is written ${hint})`);
  }
  if (parts.length !== 2) throw new AddressParseError(text, "a CIDR is address/prefix-length");
  const [addressText, prefixText] = parts as [string, string];
  const address = parseWithin(addressText, text);
  if (!PREFIX_LENGTH.test(prefixText)) {
    throw new AddressParseError(text, `prefix length ${JSON.stringify(prefixText)} is not a decimal number`);
  }
  const prefixLength = Number(prefixText);
  const bits = bitLength(address.family);
  if (prefixLength > bits) {
    throw new AddressParseError(text, `prefix length ${prefixLength} is above ${bits} for IPv${address.family}`);
  }
  const hostMask = (1n << BigInt(bits - prefixLength)) - 1n;
  return { family: address.family, network: address.value & ~hostMask & maxValue(address.family), prefixLength, source: text };
}

export function cidrToRange(cidr: CIDR): AddressRange {
  const hostMask = (1n << BigInt(bitLength(cidr.family) - cidr.prefixLength)) - 1n;
  return { family: cidr.family, first: cidr.network, last: cidr.network | hostMask, source: cidr.source };
}

/**
 * Parses one entry of an IPAddressPool's `addresses`: a CIDR or `first-last` (spaces around the
 * dash allowed), as MetalLB does — text containing a dash is a range, anything else a CIDR.
 */
export function parseAddressRange(text: string): AddressRange {
  if (typeof text !== "string") throw new AddressParseError(String(text), "not a string");
  const dash = text.indexOf("-");
  if (dash < 0) return cidrToRange(parseCIDR(text));
  const first = parseWithin(text.slice(0, dash).trim(), text);
  const last = parseWithin(text.slice(dash + 1).trim(), text);
  if (first.family !== last.family) {
    throw new AddressParseError(text, `range mixes IPv${first.family} and IPv${last.family}`);
  }
  if (compareIP(first, last) > 0) {
    throw new AddressParseError(text, `start ${formatIP(first)} is after end ${formatIP(last)}`);
  }
  return { family: first.family, first: first.value, last: last.value, source: text };
}

/** Parses a part of a larger input, so that the error names the whole input. */
function parseWithin(part: string, input: string): IPAddress {
  try {
    return parseIP(part);
  } catch (error) {
    if (error instanceof AddressParseError) {
      const reason = part === input ? error.reason : `${JSON.stringify(part)}: ${error.reason}`;
      throw new AddressParseError(input, reason);
    }
    throw error;
  }
}

export function rangeContains(range: AddressRange, ip: IPAddress): boolean {
  return range.family === ip.family && range.first <= ip.value && ip.value <= range.last;
}

export function rangesOverlap(a: AddressRange, b: AddressRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/** Number of addresses in the range (up to 2^128 for ::/0). */
export function rangeSize(range: AddressRange): bigint {
  return range.last - range.first + 1n;
}

/** The range's addresses in order, lazily, starting at `from` (inclusive) when it lies within. */
export function* iterateRange(range: AddressRange, from?: IPAddress): Generator<IPAddress, void, undefined> {
  if (from !== undefined && from.family !== range.family) return;
  let value = from !== undefined && from.value > range.first ? from.value : range.first;
  for (; value <= range.last; value++) yield { family: range.family, value };
}

export function formatRange(range: AddressRange): string {
  const first = formatIP({ family: range.family, value: range.first });
  const last = formatIP({ family: range.family, value: range.last });
  return first === last ? first : `${first}-${last}`;
}
