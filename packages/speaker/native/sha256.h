#ifndef BOLLARD_SHA256_H
#define BOLLARD_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t h[8];
  uint64_t length;
  uint8_t block[64];
  size_t used;
} sha256_ctx;

/** The states after the key's inner and outer pad blocks: the same for every message, so hashed once. */
typedef struct {
  uint32_t inner[8];
  uint32_t outer[8];
} hmac_sha256_key_pads;

void sha256_init(sha256_ctx *ctx);
void sha256_update(sha256_ctx *ctx, const uint8_t *data, size_t len);
void sha256_final(sha256_ctx *ctx, uint8_t out[32]);
void hmac_sha256_key(hmac_sha256_key_pads *pads, const uint8_t *key, size_t key_len);
void hmac_sha256(const hmac_sha256_key_pads *pads, const uint8_t *data, size_t len, uint8_t out[32]);

#endif
