import assert from "node:assert/strict";
import { seededRandom } from "../src/random/seeded.ts";
import { describe, it } from "node:test";
import {
  AddressParseError,
  compareIP,
  formatIP,
  type IPAddress,
  iterateRange,
  MAX_IPV4,
  MAX_IPV6,
  nextIP,
  parseAddressRange,
  parseCIDR,
  parseIP,
  prevIP,
  rangeContains,
  rangeSize,
  rangesOverlap,
} from "../src/index.ts";

const v4 = (value: bigint): IPAddress => ({ family: 4, value });
const v6 = (value: bigint): IPAddress => ({ family: 6, value });

describe("parseIP / formatIP", () => {
  const canonical: Array<[input: string, expected: IPAddress, formatted: string]> = [
    ["0.0.0.0", v4(0n), "0.0.0.0"],
    ["255.255.255.255", v4(MAX_IPV4), "255.255.255.255"],
    ["192.168.67.240", v4(0xc0a843f0n), "192.168.67.240"],
    ["::", v6(0n), "::"],
    ["::1", v6(1n), "::1"],
    ["1::", v6(1n << 112n), "1::"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", v6(MAX_IPV6), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF", v6(MAX_IPV6), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", v6(0x20010db8000000000000000000000001n), "2001:db8::1"],
    // RFC 5952 4.2.2: a single zero group is not compressed.
    ["2001:db8:0:1:1:1:1:1", v6(0x20010db8000000010001000100010001n), "2001:db8:0:1:1:1:1:1"],
    // RFC 5952 4.2.3: the longest run is compressed; on a tie, the first.
    ["2001:0:0:1:0:0:0:1", v6(0x20010000000000010000000000000001n), "2001:0:0:1::1"],
    ["2001:db8:0:0:1:0:0:1", v6(0x20010db8000000000001000000000001n), "2001:db8::1:0:0:1"],
    ["1:2:3:4:5:6:7::", v6(0x00010002000300040005000600070000n), "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", v6(0x00000002000300040005000600070008n), "0:2:3:4:5:6:7:8"],
    ["fe80::1:0:0:0", v6(0xfe800000000000000001000000000000n), "fe80::1:0:0:0"],
    // IPv4-mapped IPv6 stays IPv6, written in the mixed notation RFC 5952 section 5 recommends.
    ["::ffff:192.0.2.1", v6(0xffffc0000201n), "::ffff:192.0.2.1"],
    ["0:0:0:0:0:ffff:c000:201", v6(0xffffc0000201n), "::ffff:192.0.2.1"],
    ["64:ff9b::192.0.2.33", v6(0x0064ff9b0000000000000000c0000221n), "64:ff9b::c000:221"],
    ["::0.0.0.1", v6(1n), "::1"],
  ];
  for (const [input, expected, formatted] of canonical) {
    it(`${input} → ${formatted}`, () => {
      assert.deepEqual(parseIP(input), expected);
      assert.equal(formatIP(expected), formatted);
      assert.deepEqual(parseIP(formatted), expected);
    });
  }

  const invalid: Array<[input: string, reason: RegExp]> = [
    ["", /four/],
    ["1.2.3", /four/],
    ["1.2.3.4.5", /four/],
    ["256.0.0.1", /above 255/],
    ["01.2.3.4", /leading zero/],
    ["1.2.3.04", /leading zero/],
    ["1.2.3.-1", /not a decimal/],
    ["1.2.3.4 ", /not a decimal/],
    ["0x1.2.3.4", /not a decimal/],
    ["fe80::1%eth0", /zones/],
    ["fe80::1%1", /zones/],
    [":::", /empty group/],
    ["1:::2", /empty group/],
    ["1::2::3", /only once/],
    [":1:2:3:4:5:6:7", /empty group/],
    ["1:2:3:4:5:6:7:", /empty group/],
    ["1:2:3:4:5:6:7", /eight groups/],
    ["1:2:3:4:5:6:7:8:9", /eight groups/],
    ["1:2:3:4:5:6:7:8::", /too many/],
    ["::1:2:3:4:5:6:7:8", /too many/],
    ["12345::", /1-4 hex/],
    ["g::", /1-4 hex/],
    ["1.2.3.4::", /last part/],
    ["::1.2.3.4:1", /last part/],
    ["::256.1.1.1", /above 255/],
  ];
  for (const [input, reason] of invalid) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseIP(input),
        (error: unknown) => error instanceof AddressParseError && error.input === input && reason.test(error.reason),
      );
    });
  }

  it("refuses to format a value outside its family", () => {
    assert.throws(() => formatIP(v4(MAX_IPV4 + 1n)), RangeError);
    assert.throws(() => formatIP(v6(-1n)), RangeError);
  });
});

describe("next / prev / compare", () => {
  it("steps and stops at the ends of each family", () => {
    assert.deepEqual(nextIP(parseIP("10.0.0.255")), parseIP("10.0.1.0"));
    assert.deepEqual(prevIP(parseIP("10.0.1.0")), parseIP("10.0.0.255"));
    assert.equal(nextIP(parseIP("255.255.255.255")), undefined);
    assert.equal(prevIP(parseIP("0.0.0.0")), undefined);
    assert.equal(nextIP(parseIP("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), undefined);
    assert.equal(prevIP(parseIP("::")), undefined);
    assert.deepEqual(nextIP(parseIP("::ffff:ffff")), parseIP("::1:0:0"));
  });
  it("orders IPv4 before IPv6, then by value", () => {
    const sorted = ["::", "10.0.0.2", "::1", "10.0.0.10", "0.0.0.0"].map(parseIP).sort(compareIP).map(formatIP);
    assert.deepEqual(sorted, ["0.0.0.0", "10.0.0.2", "10.0.0.10", "::", "::1"]);
  });
});

describe("parseCIDR / parseAddressRange", () => {
  const ranges: Array<[input: string, first: string, last: string, size: bigint]> = [
    ["10.0.0.0/24", "10.0.0.0", "10.0.0.255", 256n],
    // Host bits set: read as the network, as Go's net.ParseCIDR (and so MetalLB) does.
    ["10.0.0.77/24", "10.0.0.0", "10.0.0.255", 256n],
    ["192.168.1.1/32", "192.168.1.1", "192.168.1.1", 1n],
    ["0.0.0.0/0", "0.0.0.0", "255.255.255.255", 1n << 32n],
    ["8.8.8.8/0", "0.0.0.0", "255.255.255.255", 1n << 32n],
    ["fd00::/64", "fd00::", "fd00::ffff:ffff:ffff:ffff", 1n << 64n],
    ["::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1n << 128n],
    ["::/128", "::", "::", 1n],
    ["2001:db8::1/128", "2001:db8::1", "2001:db8::1", 1n],
    ["2001:db8::ffff/120", "2001:db8::ff00", "2001:db8::ffff", 256n],
    ["::ffff:10.0.0.0/120", "::ffff:10.0.0.0", "::ffff:10.0.0.255", 256n],
    [" 10.0.0.0/31 ", "10.0.0.0", "10.0.0.1", 2n],
    ["192.168.67.240-192.168.67.250", "192.168.67.240", "192.168.67.250", 11n],
    ["192.168.67.240 - 192.168.67.250", "192.168.67.240", "192.168.67.250", 11n],
    ["10.0.0.5-10.0.0.5", "10.0.0.5", "10.0.0.5", 1n],
    ["0.0.0.0-255.255.255.255", "0.0.0.0", "255.255.255.255", 1n << 32n],
    ["fd00::10-fd00::1:0", "fd00::10", "fd00::1:0", 0x10000n - 0x10n + 1n],
    [":: - ::", "::", "::", 1n],
  ];
  for (const [input, first, last, size] of ranges) {
    it(`${JSON.stringify(input)} is ${first} … ${last}`, () => {
      const range = parseAddressRange(input);
      assert.equal(range.source, input);
      assert.equal(formatIP({ family: range.family, value: range.first }), first);
      assert.equal(formatIP({ family: range.family, value: range.last }), last);
      assert.equal(rangeSize(range), size);
    });
  }

  it("parseCIDR keeps the prefix length and clears host bits", () => {
    assert.deepEqual(parseCIDR("10.1.2.3/8"), { family: 4, network: 0x0a000000n, prefixLength: 8, source: "10.1.2.3/8" });
    assert.deepEqual(parseCIDR("fd00::1/128"), { family: 6, network: 0xfd000000000000000000000000000001n, prefixLength: 128, source: "fd00::1/128" });
  });

  const invalid: Array<[input: string, reason: RegExp]> = [
    ["10.0.0.5-10.0.0.4", /start 10\.0\.0\.5 is after end 10\.0\.0\.4/],
    ["fd00::2-fd00::1", /start fd00::2 is after end fd00::1/],
    ["10.0.0.1-fd00::1", /mixes IPv4 and IPv6/],
    ["::ffff:10.0.0.1-10.0.0.2", /mixes IPv6 and IPv4/],
    ["10.0.0.1-", /"": an IPv4 address has four/],
    ["-10.0.0.1", /"": an IPv4 address has four/],
    ["10.0.0.1-10.0.0.2-10.0.0.3", /"10.0.0.2-10.0.0.3"/],
    ["10.0.0.0/33", /prefix length 33 is above 32/],
    ["fd00::/129", /prefix length 129 is above 128/],
    ["10.0.0.0/", /prefix length "" is not/],
    ["10.0.0.0/08", /prefix length "08" is not/],
    // Text with a dash is a range (MetalLB's rule), so this fails on its first address.
    ["10.0.0.0/-1", /"10.0.0.0\/": octet "0\/" is not a decimal number/],
    ["10.0.0.0/24/1", /address\/prefix-length/],
    ["10.0.0.1", /missing \/prefix-length \(a single address is written 10\.0\.0\.1\/32\)/],
    ["fd00::1", /written fd00::1\/128/],
    ["fe80::1%eth0/64", /zones/],
    ["010.0.0.0/8", /leading zero/],
    ["", /four/],
  ];
  for (const [input, reason] of invalid) {
    it(`refuses ${JSON.stringify(input)}, naming it`, () => {
      assert.throws(
        () => parseAddressRange(input),
        (error: unknown) =>
          error instanceof AddressParseError &&
          error.input === input &&
          error.message.includes(JSON.stringify(input)) &&
          reason.test(error.reason),
      );
    });
  }
});

describe("contains / overlap / iterate", () => {
  const r = parseAddressRange;
  it("contains only its own family's addresses, ends included", () => {
    const range = r("10.0.0.10-10.0.0.20");
    assert.equal(rangeContains(range, parseIP("10.0.0.10")), true);
    assert.equal(rangeContains(range, parseIP("10.0.0.20")), true);
    assert.equal(rangeContains(range, parseIP("10.0.0.9")), false);
    assert.equal(rangeContains(range, parseIP("10.0.0.21")), false);
    // ::a00:a has the same numeric value as 10.0.0.10 but is another family.
    assert.equal(rangeContains(range, parseIP("::a00:a")), false);
    assert.equal(rangeContains(r("::/0"), parseIP("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), true);
    assert.equal(rangeContains(r("::/0"), parseIP("0.0.0.0")), false);
    assert.equal(rangeContains(r("0.0.0.0/0"), parseIP("255.255.255.255")), true);
  });
  it("overlaps when ranges share an address", () => {
    assert.equal(rangesOverlap(r("10.0.0.0/24"), r("10.0.0.255-10.0.1.5")), true);
    assert.equal(rangesOverlap(r("10.0.0.0/24"), r("10.0.1.0/24")), false);
    assert.equal(rangesOverlap(r("10.0.0.0/8"), r("10.20.30.40/32")), true);
    assert.equal(rangesOverlap(r("0.0.0.0/0"), r("::/0")), false);
    assert.equal(rangesOverlap(r("::/0"), r("fd00::5/128")), true);
  });
  it("iterates lazily, from a start point, across an octet boundary", () => {
    const range = r("10.0.0.254-10.0.1.1");
    assert.deepEqual([...iterateRange(range)].map(formatIP), ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"]);
    assert.deepEqual([...iterateRange(range, parseIP("10.0.1.0"))].map(formatIP), ["10.0.1.0", "10.0.1.1"]);
    assert.deepEqual([...iterateRange(range, parseIP("10.0.0.1"))].length, 4);
    assert.deepEqual([...iterateRange(range, parseIP("10.0.2.0"))], []);
    assert.deepEqual([...iterateRange(range, parseIP("::1"))], []);
    const huge = iterateRange(r("::/0"));
    assert.deepEqual(huge.next().value, parseIP("::"));
    assert.deepEqual(huge.next().value, parseIP("::1"));
    const top = [...iterateRange(r("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"))].map(formatIP);
    assert.deepEqual(top, ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]);
  });
});


function randomBits(random: () => number, bits: number): bigint {
  let value = 0n;
  for (let i = 0; i < bits; i += 16) value = (value << 16n) | BigInt(Math.floor(random() * 0x10000));
  return value & ((1n << BigInt(bits)) - 1n);
}

/** Random addresses biased toward the interesting ones: zero runs, all-ones groups, mapped IPv4. */
function randomAddress(random: () => number): IPAddress {
  if (random() < 0.4) return v4(randomBits(random, 32));
  let value = 0n;
  for (let g = 0; g < 8; g++) {
    const pick = random();
    const group = pick < 0.45 ? 0n : pick < 0.55 ? 0xffffn : BigInt(Math.floor(random() * 0x10000));
    value = (value << 16n) | group;
  }
  if (random() < 0.1) value = 0xffff00000000n | randomBits(random, 32);
  return v6(value);
}

/** RFC 5952 4.2: "::" replaces the longest run of 2+ zero groups (the first on a tie), and nothing else. */
function assertRFC5952(text: string): void {
  assert.doesNotMatch(text, /(^|:)0[0-9a-f]/, `leading zero in ${text}`);
  assert.doesNotMatch(text, /[A-F]/, `upper case in ${text}`);
  const [head = "", tail] = text.split("::");
  const before = head === "" ? [] : head.split(":");
  const after = tail === undefined || tail === "" ? [] : tail.split(":");
  const compressed = tail === undefined ? 0 : 8 - before.length - after.length;
  assert.ok(tail === undefined || compressed >= 2, `"::" stands for ${compressed} group(s) in ${text}`);
  const runs = (groups: string[]) => {
    const lengths: number[] = [];
    let current = 0;
    for (const group of [...groups, "end"]) {
      if (group === "0") current++;
      else if (current > 0) {
        lengths.push(current);
        current = 0;
      }
    }
    return lengths;
  };
  for (const run of runs(before)) assert.ok(run < compressed || (compressed === 0 && run < 2), `longer zero run before "::" in ${text}`);
  for (const run of runs(after)) assert.ok(run <= compressed || (compressed === 0 && run < 2), `longer zero run after "::" in ${text}`);
}

describe("properties (seeded)", () => {
  const seed = Number(process.env.ADDRESS_SEED ?? 20260401);

  it(`parseIP(formatIP(x)) is x, and the text is canonical (seed ${seed})`, () => {
    const random = seededRandom(seed);
    for (let i = 0; i < 20_000; i++) {
      const address = randomAddress(random);
      const text = formatIP(address);
      assert.deepEqual(parseIP(text), address, `seed ${seed} case ${i}: ${text}`);
      assert.equal(formatIP(parseIP(text.toUpperCase())), text, `seed ${seed} case ${i}: upper-case ${text}`);
      if (address.family === 6 && !text.startsWith("::ffff:")) assertRFC5952(text);
    }
  });

  it(`containment and overlap agree with brute force on small ranges (seed ${seed})`, () => {
    const random = seededRandom(seed + 1);
    for (let i = 0; i < 2_000; i++) {
      const family = random() < 0.5 ? 4 : 6;
      const base = randomBits(random, family === 4 ? 32 : 128) & ~0xffn;
      const make = (): ReturnType<typeof parseAddressRange> => {
        if (random() < 0.5) {
          const prefix = (family === 4 ? 32 : 128) - Math.floor(random() * 6);
          const host = BigInt(Math.floor(random() * 64));
          return parseAddressRange(`${formatIP({ family, value: base + host })}/${prefix}`);
        }
        const a = base + BigInt(Math.floor(random() * 64));
        const b = a + BigInt(Math.floor(random() * 20));
        return parseAddressRange(`${formatIP({ family, value: a })}-${formatIP({ family, value: b })}`);
      };
      const x = make();
      const y = make();
      const members = (range: typeof x) => new Set([...iterateRange(range)].map((ip) => ip.value));
      const inX = members(x);
      const inY = members(y);
      assert.equal(BigInt(inX.size), rangeSize(x), `seed ${seed} case ${i}: size of ${x.source}`);
      const shared = [...inX].some((value) => inY.has(value));
      assert.equal(rangesOverlap(x, y), shared, `seed ${seed} case ${i}: ${x.source} vs ${y.source}`);
      assert.equal(rangesOverlap(y, x), shared);
      for (let probe = base - 2n; probe < base + 90n; probe++) {
        if (probe < 0n) continue;
        const ip = { family, value: probe } as IPAddress;
        assert.equal(rangeContains(x, ip), inX.has(probe), `seed ${seed} case ${i}: ${x.source} ∋ ${formatIP(ip)}`);
      }
    }
  });
});
