import { createSecureContext, type SecureContext } from "node:tls";
import { matchCertificate } from "../router/match.ts";
import type { KeyPair, RouteTable } from "../router/table.ts";
import type { PemPair } from "./default-certificate.ts";

/**
 * SNI → SecureContext from whatever table is current, so a rotated Secret is served on the next handshake
 * without a restart. Contexts are cached by key-pair id and dropped when no table names them.
 */
export function createCertificateStore(generated: PemPair) {
  const generatedContext = createSecureContext(generated);
  const cache = new Map<string, SecureContext>();
  const contextOf = (pair: KeyPair | null): SecureContext => {
    if (pair === null) return generatedContext;
    let ctx = cache.get(pair.id);
    if (ctx === undefined) {
      ctx = createSecureContext({ cert: pair.cert, key: pair.key });
      cache.set(pair.id, ctx);
    }
    return ctx;
  };
  return {
    forServerName(table: RouteTable, serverName: string | undefined): SecureContext {
      return contextOf(matchCertificate(table, serverName));
    },
    /** What clients without SNI get: `--default-ssl-certificate` if usable, else the generated pair. */
    fallback(table: RouteTable): PemPair {
      const pair = table.certificates.fallback;
      return pair === null ? generated : { cert: pair.cert, key: pair.key };
    },
    retain(table: RouteTable): void {
      const live = new Set<string>();
      for (const pair of table.certificates.exactHosts.values()) live.add(pair.id);
      for (const pair of table.certificates.wildcardHosts.values()) live.add(pair.id);
      if (table.certificates.fallback !== null) live.add(table.certificates.fallback.id);
      for (const id of cache.keys()) if (!live.has(id)) cache.delete(id);
    },
  };
}
