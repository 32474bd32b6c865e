// IP and MAC addresses as they sit in frames. Text forms are canonical (dotted quad, RFC 5952
// IPv6, lower-case colon MAC), so a decoded address can be looked up in a set of owned addresses.

/** Address text that is not a MAC, IPv4 or IPv6 address. */
export class AddressBytesError extends Error {
  override name = "AddressBytesError";
  readonly input: string;
  readonly expected: "MAC" | "IPv4" | "IPv6";
  constructor(input: string, expected: "MAC" | "IPv4" | "IPv6") {
    super(`${JSON.stringify(input)} is not a valid ${expected} address`);
    this.input = input;
    this.expected = expected;
  }
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function macToBytes(mac: string): Buffer {
  if (!MAC.test(mac)) throw new AddressBytesError(mac, "MAC");
  return Buffer.from(mac.replaceAll(":", ""), "hex");
}

export function formatMac(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += (i === 0 ? "" : ":") + (bytes[i] as number).toString(16).padStart(2, "0");
  return text;
}

export function ipv4ToBytes(ip: string): Buffer {
  const parts = ip.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new AddressBytesError(ip, "IPv4");
  }
  return Buffer.from(parts.map(Number));
}

export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

export function ipv6ToBytes(ip: string): Buffer {
  const fail = () => new AddressBytesError(ip, "IPv6");
  let text = ip;
  // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups.
  const lastColon = text.lastIndexOf(":");
  if (lastColon >= 0 && text.slice(lastColon + 1).includes(".")) {
    const v4 = ipv4ToBytesOr(text.slice(lastColon + 1));
    if (v4 === null) throw fail();
    text = `${text.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) throw fail();
  const parse = (part: string): number[] => {
    if (part === "") return [];
    return part.split(":").map((g) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw fail();
      return Number.parseInt(g, 16);
    });
  };
  const head = parse(halves[0] as string);
  const rest = halves.length === 2 ? parse(halves[1] as string) : [];
  const given = head.length + rest.length;
  if (halves.length === 2 ? given > 7 : given !== 8) throw fail();
  const groups = [...head, ...new Array<number>(8 - given).fill(0), ...rest];
  const bytes = Buffer.alloc(16);
  groups.forEach((g, i) => {
    bytes.writeUInt16BE(g, i * 2);
  });
  return bytes;
}

function ipv4ToBytesOr(text: string): Buffer | null {
  try {
    return ipv4ToBytes(text);
  } catch {
    return null;
  }
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((bytes[offset + i * 2] as number) << 8) | (bytes[offset + i * 2 + 1] as number));
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
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** The canonical text of an IPv4 or IPv6 address, or null if it is neither. */
export function canonicalIP(ip: string): string | null {
  try {
    return ip.includes(":") ? formatIPv6(ipv6ToBytes(ip)) : formatIPv4(ipv4ToBytes(ip));
  } catch {
    return null;
  }
}
