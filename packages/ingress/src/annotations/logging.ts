// Per-route access logging.
import type { PolicyReader } from "./read.ts";

/** `enable-access-log: "false"` drops the route's lines from the access log (when the data plane writes one). */
export const readLogging: PolicyReader = (read) => {
  const accessLog = read.bool("enable-access-log", true);
  return accessLog ? {} : { accessLog };
};
