import { generateSelfSignedCertificate, type PemPair } from "@bollard/core";

export { generateSelfSignedCertificate, type PemPair };

/**
 * The self-signed certificate served when SNI matches no Ingress TLS host and no
 * `--default-ssl-certificate` is given. Made at start, never written to disk.
 */
export const generateDefaultCertificate = (): PemPair => generateSelfSignedCertificate("Bollard Ingress Default Certificate", ["ingress.local"]);
