// `ssl-passthrough`: TLS connections to the Ingress's hosts are not terminated but passed, ClientHello and all,
// to the backend of the host's `/` path, which speaks TLS itself. The compiler builds the table of passthrough
// hosts (it alone sees every Ingress of a host); the data plane reads the server name ahead of its handshake.
import type { PolicyReader } from "./read.ts";

/**
 * Reads: ssl-passthrough. ingress-nginx also needs the controller flag `--enable-ssl-passthrough`; Bollard needs
 * none: reading the ClientHello ahead costs nothing while no Ingress asks for passthrough, and little when one does.
 */
export const readPassthrough: PolicyReader = (read) => {
  if (!read.bool("ssl-passthrough", false)) return {};
  read.differs(
    "ssl-passthrough",
    "needs no controller flag (ingress-nginx: --enable-ssl-passthrough); TLS connections to the Ingress's hosts reach the backend of its \"/\" path unread, so its other annotations act on plain-HTTP requests only",
  );
  return { sslPassthrough: true };
};
