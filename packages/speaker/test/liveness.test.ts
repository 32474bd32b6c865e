// The liveness thread's own HMAC-SHA256 (it signs and checks membership datagrams without node:crypto)
// against node:crypto, over key and message lengths around SHA-256's 64-byte block.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { nativeHmacSha256 } from "../src/liveness/liveness.ts";

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 17 + 7) & 0xff));

describe("the liveness thread's HMAC-SHA256", () => {
  for (const keyLength of [1, 16, 32, 63, 64, 65, 200]) {
    it(`matches node:crypto with a ${keyLength}-byte key`, () => {
      const key = bytes(keyLength, keyLength);
      for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1368, 1400]) {
        const data = bytes(length, length + 1);
        assert.deepEqual(nativeHmacSha256(key, data), createHmac("sha256", key).update(data).digest(), `${length}-byte message`);
      }
    });
  }
});
