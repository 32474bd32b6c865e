// 100,000 random and mutated messages through the decoder: it must never throw anything but BgpDecodeError, and
// whatever it decodes without complaint must encode back to data that decodes the same. Seeded, so a failure
// names the seed and iteration that reproduce it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BgpDecodeError, BgpEncodeError, decodeMessage, encodeMessage, FrameReader, type Message, type UpdateContext } from "@bollard/bgp";
import { seededRandom } from "@bollard/core";

function prng(seed: number) {
  const next = seededRandom(seed);
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)] as T };
}

const contexts: UpdateContext[] = [
  { fourOctetAs: true, external: true },
  { fourOctetAs: true, external: false },
  { fourOctetAs: false, external: true },
];

// Well-formed seeds to mutate: one of every message type and attribute this codec knows.
const seeds: Message[] = [
  { type: "keepalive" },
  {
    type: "open",
    myAs: 23456,
    holdTime: 90,
    routerId: "10.0.0.2",
    capabilities: [
      { kind: "multiprotocol", afi: 1, safi: 1 },
      { kind: "multiprotocol", afi: 2, safi: 1 },
      { kind: "route-refresh" },
      { kind: "four-octet-as", asn: 4200000000 },
      { kind: "graceful-restart", restarting: true, restartTime: 120, families: [{ afi: 1, safi: 1, forwardingPreserved: true }] },
      { kind: "unknown", code: 70, value: Uint8Array.of(1, 2, 3) },
    ],
  },
  {
    type: "update",
    withdrawn: ["10.9.0.0/16", "10.8.8.8/32"],
    attributes: {
      origin: "egp",
      asPath: [{ type: "sequence", asns: [64500, 64501] }, { type: "set", asns: [1, 2, 3] }],
      nextHop: "10.0.0.2",
      med: 7,
      localPref: 200,
      atomicAggregate: true,
      aggregator: { asn: 64500, address: "10.0.0.1" },
      communities: [0xffffff01, 0xfbf40001],
      largeCommunities: [[64500, 1, 2]],
      unknown: [{ flags: 0xc0, code: 99, value: Uint8Array.of(9, 9) }],
    },
    nlri: ["192.168.10.1/32", "192.168.0.0/16", "0.0.0.0/0"],
  },
  {
    type: "update",
    withdrawn: [],
    attributes: {
      origin: "igp",
      asPath: [{ type: "sequence", asns: [64500] }],
      mpReach: { afi: 2, safi: 1, nextHops: ["2001:db8::1", "fe80::1"], nlri: ["2001:db8:1::/64", "fd00::1/128", "::/0"] },
      mpUnreach: { afi: 2, safi: 1, withdrawn: ["2001:db8:2::/48"] },
    },
    nlri: [],
  },
  { type: "update", withdrawn: [], attributes: { mpReach: { afi: 1, safi: 1, nextHops: ["10.0.0.2"], nlri: ["10.1.0.0/24"] }, origin: "igp", asPath: [] }, nlri: [] },
  { type: "notification", code: 6, subcode: 2, data: Uint8Array.of(4, 98, 121, 101, 33) },
  { type: "route-refresh", afi: 2, safi: 1, subtype: 1 },
];

const LENGTH_AT = 16;
const setLength = (b: Uint8Array) => {
  b[LENGTH_AT] = b.length >> 8;
  b[LENGTH_AT + 1] = b.length & 0xff;
};

function mutate(rand: ReturnType<typeof prng>, original: Uint8Array): Uint8Array {
  let b = Uint8Array.from(original);
  const edits = 1 + rand.int(4);
  for (let e = 0; e < edits; e++) {
    switch (rand.int(6)) {
      case 0: // flip a bit
      {
        const i = rand.int(b.length);
        b[i] = (b[i] as number) ^ (1 << rand.int(8));
        break;
      }
      case 1: // set a byte to an edge value
        b[19 + rand.int(Math.max(1, b.length - 19))] = rand.pick([0, 1, 0x7f, 0x80, 0xff, rand.int(256)]);
        break;
      case 2: {
        // cut the message short
        b = b.slice(0, 19 + rand.int(Math.max(1, b.length - 18)));
        break;
      }
      case 3: {
        // insert random bytes
        const at = 19 + rand.int(Math.max(1, b.length - 18));
        const extra = Uint8Array.from({ length: 1 + rand.int(8) }, () => rand.int(256));
        const next = new Uint8Array(b.length + extra.length);
        next.set(b.subarray(0, at));
        next.set(extra, at);
        next.set(b.subarray(at), at + extra.length);
        b = next;
        break;
      }
      case 4: // overwrite a 2-octet field with a length-like value
      {
        const at = 19 + rand.int(Math.max(1, b.length - 20));
        const v = rand.pick([0, 1, 3, 4, 255, 256, 4096, 0xffff, rand.int(0x10000)]);
        if (at + 1 < b.length) {
          b[at] = v >> 8;
          b[at + 1] = v & 0xff;
        }
        break;
      }
      default: // swap two bytes
      {
        const i = rand.int(b.length);
        const j = rand.int(b.length);
        [b[i], b[j]] = [b[j] as number, b[i] as number];
      }
    }
  }
  // Mostly keep the header consistent, so the mutation reaches the body's decoder.
  if (rand.next() < 0.9 && b.length >= 19) {
    b.fill(0xff, 0, 16);
    setLength(b);
  }
  return b;
}

function randomMessage(rand: ReturnType<typeof prng>): Uint8Array {
  const length = rand.next() < 0.5 ? 19 + rand.int(80) : rand.int(200);
  const b = Uint8Array.from({ length }, () => rand.int(256));
  if (length >= 19 && rand.next() < 0.9) {
    b.fill(0xff, 0, 16);
    setLength(b);
    b[18] = 1 + rand.int(5);
  }
  return b;
}

/** Decodes, and when that succeeds cleanly, checks that encoding and decoding again is stable. */
function check(bytes: Uint8Array, context: UpdateContext, where: string): "decoded" | "rejected" {
  let message: Message;
  try {
    message = decodeMessage(bytes, context);
  } catch (err) {
    if (err instanceof BgpDecodeError) return "rejected";
    throw new Error(`${where}: decodeMessage threw ${(err as Error)?.stack ?? err} for ${Buffer.from(bytes).toString("hex")}`);
  }
  if (message.type === "update" && (message.problems || message.treatAsWithdraw)) return "decoded";
  let again: Uint8Array;
  try {
    again = encodeMessage(message, context);
  } catch (err) {
    if (err instanceof BgpEncodeError) return "decoded"; // e.g. an unknown-AFI attribute kept opaque
    throw new Error(`${where}: encodeMessage threw ${(err as Error)?.stack ?? err} for ${Buffer.from(bytes).toString("hex")}`);
  }
  assert.deepEqual(decodeMessage(again, context), message, `${where}: re-encoding changed ${Buffer.from(bytes).toString("hex")}`);
  return "decoded";
}

describe("decoder fuzz", () => {
  const SEED = 0x5eed_b9;
  const RUNS = 100_000;

  it(`survives ${RUNS} random and mutated messages (seed ${SEED})`, () => {
    const rand = prng(SEED);
    const encodedSeeds = seeds.flatMap((m) => contexts.filter((c) => c.fourOctetAs || m.type !== "open").map((c) => ({ bytes: encodeMessage(m, c), context: c })));
    const outcomes = { decoded: 0, rejected: 0 };
    for (let i = 0; i < RUNS; i++) {
      const context = rand.pick(contexts);
      const bytes = i % 4 === 0 ? randomMessage(rand) : mutate(rand, rand.pick(encodedSeeds).bytes);
      outcomes[check(bytes, context, `seed ${SEED} iteration ${i}`)]++;
    }
    // Both outcomes must be common, or the inputs are not reaching the decoder's interesting paths.
    assert.ok(outcomes.decoded > RUNS / 20, JSON.stringify(outcomes));
    assert.ok(outcomes.rejected > RUNS / 20, JSON.stringify(outcomes));
  });

  it("survives the same inputs as a stream, in random chunks", () => {
    const rand = prng(SEED + 1);
    const encodedSeeds = seeds.map((m) => encodeMessage(m, contexts[0] as UpdateContext));
    for (let stream = 0; stream < 2_000; stream++) {
      const reader = new FrameReader();
      const parts = Array.from({ length: 1 + rand.int(6) }, () => (rand.next() < 0.7 ? rand.pick(encodedSeeds) : mutate(rand, rand.pick(encodedSeeds))));
      const all = Buffer.concat(parts);
      try {
        for (let at = 0; at < all.length; ) {
          const size = 1 + rand.int(64);
          for (const frame of reader.push(all.subarray(at, at + size))) check(frame, contexts[0] as UpdateContext, `stream ${stream}`);
          at += size;
        }
      } catch (err) {
        if (!(err instanceof BgpDecodeError)) throw err;
      }
    }
  });
});
