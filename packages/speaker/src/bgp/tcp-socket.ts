// BGP's TCP sockets with what Node cannot set on its own: the RFC 2385 MD5 key (BGPPeer password) and the TTL
// (1 for a directly connected eBGP peer, 255 with ebgpMultiHop, as FRR does). The project's addon
// (native/tcp_socket.c) makes the unconnected descriptor; Node adopts it and connects it.
import { createRequire } from "node:module";
import { isIPv4, type Server, Socket } from "node:net";

interface TcpAddon {
  tcpSocket(family: 4 | 6, md5Peer: string | null, md5Key: Buffer | null, ttl: number): number;
  setTcpMd5(fd: number, peer: string, key: Buffer): void;
}

/** RFC 2385 keys are at most 80 octets (TCP_MD5SIG_MAXKEYLEN). */
export const MAX_PASSWORD_BYTES = 80;

export class BgpSocketError extends Error {
  override name = "BgpSocketError";
  readonly code: string;
  constructor(message: string, options: { cause: unknown }) {
    const code = (options.cause as { code?: string }).code ?? "EUNKNOWN";
    super(`${message}: ${(options.cause as Error).message ?? String(options.cause)}`, options);
    this.code = code;
  }
}

const addonPath = new URL("../../build/Release/packet_socket.node", import.meta.url).pathname;
let loaded: TcpAddon | undefined;
const addon = (): TcpAddon => {
  loaded ??= createRequire(import.meta.url)(addonPath) as TcpAddon;
  return loaded;
};

export type BgpSocketOptions = {
  /** The BGPPeer password; empty or absent: no TCP MD5. */
  password?: string;
  /** 0 keeps the system default (iBGP); 1 for single-hop eBGP; 255 for ebgpMultiHop. */
  ttl: number;
};

/** The TTL FRR uses for a session of this kind. */
export const sessionTtl = (external: boolean, ebgpMultiHop: boolean) => (!external ? 0 : ebgpMultiHop ? 255 : 1);

/** An unconnected socket for BgpSession's createSocket: connect() sends the SYN with the options already set. */
export function bgpSocket(peerAddress: string, options: BgpSocketOptions): Socket {
  const password = options.password ? Buffer.from(options.password, "utf8") : null;
  if (password && password.length > MAX_PASSWORD_BYTES) throw new RangeError(`a TCP MD5 password has at most ${MAX_PASSWORD_BYTES} bytes`);
  let fd: number;
  try {
    fd = addon().tcpSocket(isIPv4(peerAddress) ? 4 : 6, password ? peerAddress : null, password, options.ttl);
  } catch (cause) {
    throw new BgpSocketError(`opening a TCP socket to ${peerAddress}`, { cause });
  }
  // manualStart: the descriptor is not connected yet, so Node must not start reading until connect() has.
  return new Socket({ fd, manualStart: true } as ConstructorParameters<typeof Socket>[0]);
}

/** Accept `peerAddress`'s connections on a listening server only with this password (a passive session). */
export function setListenerPassword(server: Server, peerAddress: string, password: string): void {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) throw new Error("the server is not listening");
  try {
    addon().setTcpMd5(fd, peerAddress, Buffer.from(password, "utf8"));
  } catch (cause) {
    throw new BgpSocketError(`setting the TCP MD5 key for ${peerAddress}`, { cause });
  }
}
