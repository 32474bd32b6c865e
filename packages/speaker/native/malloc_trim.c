// Gives the free pages of glibc's malloc back to the kernel. glibc returns memory to the system on its own only from
// the top of an arena (M_TRIM_THRESHOLD); free pages below a live allocation stay resident. Node's own allocations
// (the TLS connections' buffers, the informers' JSON parsing, the heap's external memory) churn in them while the
// process idles, so an idle speaker kept 1.5–3.4 MiB of free pages in RSS (packages/speaker/README.md "Memory").
// MALLOC_TRIM_THRESHOLD_ cannot do this: the speaker's `node` carries a file capability, so glibc ignores MALLOC_*.
#define NAPI_VERSION 8
#include <node_api.h>

#include <stdbool.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

// trimMalloc(): whether the C library could give memory back (glibc only; with another libc it does nothing).
static napi_value trim_malloc(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#ifdef __GLIBC__
  released = malloc_trim(0) == 1;
#endif
  napi_value result;
  napi_get_boolean(env, released, &result);
  return result;
}

void register_malloc_trim(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"trimMalloc", NULL, trim_malloc, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
