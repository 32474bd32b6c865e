// IP addresses and prefixes as the wire carries them (network byte order, prefixes as length + significant
// octets) and as people write them ("10.0.0.0/24", "2001:db8::/64").
import { isIPv4, isIPv6 } from "node:net";

export type Family = 4 | 6;

export const addressBytes = (family: Family) => (family === 4 ? 4 : 16);

export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError(`an address has 4 or 16 octets, not ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  // RFC 5952: the longest run of two or more zero groups (the first on a tie) becomes "::".
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
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Parses an IPv4 or IPv6 address (no zone). */
export function parseAddress(text: string): Uint8Array {
  if (isIPv4(text)) return Uint8Array.from(text.split(".").map(Number));
  if (!isIPv6(text)) throw new RangeError(`not an IP address: ${JSON.stringify(text)}`);
  // The WHATWG URL parser writes any IPv6 text (embedded IPv4 included) as compressed hex groups.
  const body = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [head, rest] = body.split("::") as [string, string | undefined];
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const zeros = 8 - left.length - right.length;
  const groups = rest === undefined ? [...left, ...right] : [...left, ...new Array<number>(zeros).fill(0), ...right];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

export const familyOf = (address: string): Family => (isIPv4(address) ? 4 : 6);

/** A prefix in canonical text: host bits cleared, IPv6 compressed ("10.0.0.0/24", "2001:db8::/64"). */
export type Prefix = string;

export function parsePrefix(text: Prefix): { family: Family; bytes: Uint8Array; length: number } {
  const slash = text.indexOf("/");
  if (slash === -1) throw new RangeError(`a prefix needs a length: ${JSON.stringify(text)}`);
  const bytes = parseAddress(text.slice(0, slash));
  const family: Family = bytes.length === 4 ? 4 : 6;
  const lengthText = text.slice(slash + 1);
  const length = Number(lengthText);
  if (!/^\d{1,3}$/.test(lengthText) || length > bytes.length * 8) throw new RangeError(`bad prefix length in ${JSON.stringify(text)}`);
  return { family, bytes: maskBytes(bytes, length), length };
}

export function formatPrefix(bytes: Uint8Array, length: number): Prefix {
  return `${formatAddress(maskBytes(bytes, length))}/${length}`;
}

/** The prefix in canonical text, or a RangeError for text that is not one. */
export function canonicalPrefix(text: string): Prefix {
  const { bytes, length } = parsePrefix(text);
  return formatPrefix(bytes, length);
}

function maskBytes(bytes: Uint8Array, length: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    out[i] = (out[i] as number) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}
