// How the upstream is reached: protocol, TLS, timeouts, retries, body limits.
import type { PolicyReader } from "./read.ts";

/** Reads: backend-protocol, proxy-ssl-*, proxy-*-timeout, proxy-next-upstream*, proxy-http-version, proxy-body-size, client-body-buffer-size, proxy-buffering knobs. */
export const readUpstream: PolicyReader = (_read) => ({});
