// The annotation readers, in the order they apply (later readers may read what earlier ones decided).
import { readAccess } from "./access.ts";
import { readBalance } from "./balance.ts";
import { readBasicAuth } from "./basic-auth.ts";
import { readCanary } from "./canary.ts";
import { readClientTls } from "./client-tls.ts";
import { readCors } from "./cors.ts";
import { readErrors } from "./errors.ts";
import { readExternalAuth } from "./external-auth.ts";
import { readHeaders } from "./headers.ts";
import { readLimits } from "./limits.ts";
import { readLogging } from "./logging.ts";
import { readPassthrough } from "./passthrough.ts";
import type { PolicyReader } from "./read.ts";
import { readRedirect } from "./redirect.ts";
import { readRewrite } from "./rewrite.ts";
import { readUpstream } from "./upstream.ts";

export const POLICY_READERS: readonly PolicyReader[] = Object.freeze([
  readRedirect,
  readRewrite,
  readHeaders,
  readLogging,
  readAccess,
  readLimits,
  readCors,
  readBasicAuth,
  readExternalAuth,
  readClientTls,
  readUpstream,
  readBalance,
  readCanary,
  readErrors,
  readPassthrough,
]);
