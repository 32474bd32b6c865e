// 100k random and mutated frames through both decoders: none may throw, every rejection must carry
// a known reason, and whatever is accepted must re-encode to a frame that decodes the same.
import { seededRandom } from "@bollard/core";
import assert from "node:assert/strict";
import { it } from "node:test";
import { decodeArpFrame, decodeNdpFrame, encodeArpFrame, encodeNdpFrame, type MalformedReason } from "../src/l2/frames.ts";


const reasons = new Set<MalformedReason>(["truncated", "not-arp", "not-ipv6", "unsupported", "invalid", "bad-checksum"]);

const seeds = [
  encodeArpFrame({
    destination: "ff:ff:ff:ff:ff:ff",
    source: "02:00:00:00:00:01",
    arp: { operation: 1, senderMac: "02:00:00:00:00:01", senderIp: "10.0.0.1", targetMac: "00:00:00:00:00:00", targetIp: "10.0.0.240" },
  }),
  encodeNdpFrame({
    destination: "33:33:ff:00:00:10",
    source: "02:00:00:00:00:01",
    sourceIp: "fd00::1",
    destinationIp: "ff02::1:ff00:10",
    message: { type: "solicitation", targetIp: "fd00::10", sourceLinkAddress: "02:00:00:00:00:01" },
  }),
  encodeNdpFrame({
    destination: "33:33:00:00:00:01",
    source: "02:00:00:00:00:02",
    sourceIp: "fe80::2",
    destinationIp: "ff02::1",
    message: { type: "advertisement", targetIp: "fd00::10", router: false, solicited: false, override: true, targetLinkAddress: "02:00:00:00:00:02" },
  }),
];

function mutate(random: () => number, seed: Buffer): Buffer {
  const frame = Buffer.from(seed);
  switch (Math.floor(random() * 4)) {
    case 0: // flip a few bytes
      for (let n = 1 + Math.floor(random() * 4); n > 0; n--) frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
      return frame;
    case 1: // truncate
      return frame.subarray(0, Math.floor(random() * frame.length));
    case 2: // extend with garbage
      return Buffer.concat([frame, Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)))]);
    default: // rewrite a length or option field
      if (frame.length > 19) frame.writeUInt16BE(Math.floor(random() * 65536), 18);
      if (frame.length > 79 && random() < 0.5) frame[79] = Math.floor(random() * 4);
      return frame;
  }
}

it("decodes 100k random and mutated frames without throwing", () => {
  const random = seededRandom(0xb0114d);
  const accepted = { arp: 0, ndp: 0 };
  for (let i = 0; i < 100_000; i++) {
    const frame =
      i % 2 === 0
        ? Buffer.from(Array.from({ length: Math.floor(random() * 128) }, () => Math.floor(random() * 256)))
        : mutate(random, seeds[i % seeds.length] as Buffer);
    const arp = decodeArpFrame(frame);
    if (arp.ok) {
      accepted.arp++;
      const again = decodeArpFrame(encodeArpFrame({ destination: arp.value.ethernet.destination, source: arp.value.ethernet.source, arp: arp.value.arp }));
      assert.deepEqual(again, arp, `frame ${i}: ${frame.toString("hex")}`);
    } else {
      assert.ok(reasons.has(arp.reason), `frame ${i}: unknown reason ${arp.reason}`);
    }
    const ndp = decodeNdpFrame(frame);
    if (ndp.ok) {
      accepted.ndp++;
      const { ethernet, sourceIp, destinationIp, message } = ndp.value;
      const again = decodeNdpFrame(encodeNdpFrame({ destination: ethernet.destination, source: ethernet.source, sourceIp, destinationIp, message }));
      assert.deepEqual(again.ok && again.value.message, message, `frame ${i}: ${frame.toString("hex")}`);
    } else {
      assert.ok(reasons.has(ndp.reason), `frame ${i}: unknown reason ${ndp.reason}`);
    }
  }
  // Mutations that keep a frame valid must exist, or the round-trip branch above tested nothing.
  assert.ok(accepted.arp > 1000, `only ${accepted.arp} ARP frames accepted`);
  assert.ok(accepted.ndp > 100, `only ${accepted.ndp} NDP frames accepted`);
});
