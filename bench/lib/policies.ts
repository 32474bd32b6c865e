// The five ingress-nginx annotations of the `policies` bench part (nginx doing the same: nginx.ts policyHttp).
// Loaded by the measured proxy process, so it imports nothing.
const P = "nginx.ingress.kubernetes.io";

export const BENCH_POLICY_ANNOTATIONS: Record<string, string> = {
  // 1. a source allow-list (the client is 127.0.0.1)
  [`${P}/allowlist-source-range`]: "10.0.0.0/8, 127.0.0.0/8, 192.168.0.0/16",
  // 2. a rate limit per client address, never reached
  [`${P}/limit-rps`]: "1000000",
  // 3. CORS for one origin
  [`${P}/enable-cors`]: "true",
  [`${P}/cors-allow-origin`]: "https://app.bench.local",
  // 4. a regex path with a rewrite of the upstream path
  [`${P}/use-regex`]: "true",
  [`${P}/rewrite-target`]: "/$1",
  // 5. a response header from a ConfigMap
  [`${P}/custom-headers`]: "bench/bench-headers",
};
