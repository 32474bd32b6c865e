// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) for the liveness thread, which signs and checks
// membership datagrams without the JavaScript event loop (node:crypto is not callable from another
// thread). Checked against node:crypto in test/liveness.test.ts.
#include "sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t h[8], const uint8_t block[64]) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = hh + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

#if defined(__x86_64__)
#include <immintrin.h>

// The x86 SHA extensions (Intel since Goldmont/Ice Lake, AMD since Zen): a block in a few dozen cycles instead
// of hundreds. Every membership datagram is signed or checked once, and the portable rounds were a twentieth
// of a simulation process's CPU. Four rounds per step: `state` is kept as ABEF / CDGH, as the instructions
// want it; the message schedule is W[t] for the next four rounds from the previous sixteen.
__attribute__((target("sha,sse4.1"))) static void compress_sha_ni(uint32_t h[8], const uint8_t block[64]) {
  const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1);  // CDAB
  __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B);  // EFGH
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  // ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);  // CDGH
  const __m128i abef = state0, cdgh = state1;
  __m128i w[4];
  for (int i = 0; i < 16; i++) {
    __m128i words;
    if (i < 4) {
      words = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * i)), byteswap);
    } else {
      // w[i % 4] holds W of step i-4, w[(i+1) % 4] of i-3, w[(i+2) % 4] of i-2, w[(i+3) % 4] of i-1.
      __m128i t = _mm_sha256msg1_epu32(w[i % 4], w[(i + 1) % 4]);
      t = _mm_add_epi32(t, _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4));
      words = _mm_sha256msg2_epu32(t, w[(i + 3) % 4]);
    }
    w[i % 4] = words;
    __m128i k = _mm_add_epi32(words, _mm_loadu_si128((const __m128i *)&K[4 * i]));
    state1 = _mm_sha256rnds2_epu32(state1, state0, k);
    state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(k, 0x0E));
  }
  state0 = _mm_add_epi32(state0, abef);
  state1 = _mm_add_epi32(state1, cdgh);
  tmp = _mm_shuffle_epi32(state0, 0x1B);  // FEBA
  state1 = _mm_shuffle_epi32(state1, 0xB1);  // DCHG
  _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(tmp, state1, 0xF0));  // DCBA
  _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(state1, tmp, 8));  // HGFE
}

static void compress(uint32_t h[8], const uint8_t block[64]) {
  static int sha_ni = -1;  // (A race on first use only computes the same answer twice.)
  if (sha_ni < 0) sha_ni = __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
  if (sha_ni)
    compress_sha_ni(h, block);
  else
    compress_portable(h, block);
}
#else
static void compress(uint32_t h[8], const uint8_t block[64]) { compress_portable(h, block); }
#endif

void sha256_init(sha256_ctx *ctx) {
  static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(ctx->h, initial, sizeof initial);
  ctx->length = 0;
  ctx->used = 0;
}

void sha256_update(sha256_ctx *ctx, const uint8_t *data, size_t len) {
  ctx->length += len;
  if (ctx->used > 0) {
    size_t take = 64 - ctx->used < len ? 64 - ctx->used : len;
    memcpy(ctx->block + ctx->used, data, take);
    ctx->used += take;
    data += take;
    len -= take;
    if (ctx->used < 64) return;
    compress(ctx->h, ctx->block);
    ctx->used = 0;
  }
  for (; len >= 64; data += 64, len -= 64) compress(ctx->h, data);
  memcpy(ctx->block, data, len);
  ctx->used = len;
}

void sha256_final(sha256_ctx *ctx, uint8_t out[32]) {
  uint64_t bits = ctx->length * 8;
  ctx->block[ctx->used++] = 0x80;
  if (ctx->used > 56) {
    memset(ctx->block + ctx->used, 0, 64 - ctx->used);
    compress(ctx->h, ctx->block);
    ctx->used = 0;
  }
  memset(ctx->block + ctx->used, 0, 56 - ctx->used);
  for (int i = 0; i < 8; i++) ctx->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  compress(ctx->h, ctx->block);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(ctx->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)ctx->h[i];
  }
}

void hmac_sha256_key(hmac_sha256_key_pads *pads, const uint8_t *key, size_t key_len) {
  uint8_t block[64] = {0}, inner[64], outer[64];
  if (key_len > 64) {
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, key, key_len);
    sha256_final(&ctx, block);
  } else {
    memcpy(block, key, key_len);
  }
  for (int i = 0; i < 64; i++) {
    inner[i] = block[i] ^ 0x36;
    outer[i] = block[i] ^ 0x5c;
  }
  sha256_ctx ctx;
  sha256_init(&ctx);
  compress(ctx.h, inner);
  memcpy(pads->inner, ctx.h, sizeof pads->inner);
  sha256_init(&ctx);
  compress(ctx.h, outer);
  memcpy(pads->outer, ctx.h, sizeof pads->outer);
}

// Each message starts from the pads' states (their block is hashed once per key, not per message).
static void resume(sha256_ctx *ctx, const uint32_t h[8]) {
  memcpy(ctx->h, h, sizeof ctx->h);
  ctx->length = 64;
  ctx->used = 0;
}

void hmac_sha256(const hmac_sha256_key_pads *pads, const uint8_t *data, size_t len, uint8_t out[32]) {
  sha256_ctx ctx;
  uint8_t inner[32];
  resume(&ctx, pads->inner);
  sha256_update(&ctx, data, len);
  sha256_final(&ctx, inner);
  resume(&ctx, pads->outer);
  sha256_update(&ctx, inner, 32);
  sha256_final(&ctx, out);
}
