// Typed wrapper over the project's AF_PACKET addon (native/packet_socket.c).
import { createRequire } from "node:module";
import type { BpfProgram } from "./bpf.ts";
import { encodeBpfProgram } from "./bpf.ts";
import { formatMac } from "./address-bytes.ts";

interface Addon {
  open(ifindex: number, ethertype: number, filter: Buffer, onFrame: (frame: Buffer, packetType: number) => void): unknown;
  send(handle: unknown, frame: Buffer): number;
  setMembership(handle: unknown, mac: Buffer, join: boolean): void;
  close(handle: unknown): void;
  setRef(handle: unknown, ref: boolean): void;
  listInterfaces(): Array<{ index: number; name: string; flags: number; type: number; mac?: Buffer; masterIndex: number; kind?: string }>;
}

/** The addon has not been built: run `npm run build -w @bollard/speaker`. */
export class AddonNotBuiltError extends Error {
  override name = "AddonNotBuiltError";
  readonly path: string;
  constructor(path: string, options: { cause: unknown }) {
    super(`AF_PACKET addon not loadable at ${path}: run 'npm run build -w @bollard/speaker'`, options);
    this.path = path;
  }
}

/** A packet-socket system call failed; `code` is the errno name (EPERM without CAP_NET_RAW). */
export class PacketSocketError extends Error {
  override name = "PacketSocketError";
  readonly code: string;
  readonly operation: string;
  readonly ifindex: number;
  constructor(operation: string, ifindex: number, options: { cause: unknown }) {
    const cause = options.cause as { code?: string; message?: string };
    super(`${operation} on interface index ${ifindex}: ${cause.message ?? String(options.cause)}`, options);
    this.code = cause.code ?? "EUNKNOWN";
    this.operation = operation;
    this.ifindex = ifindex;
  }
}

const addonPath = new URL("../../build/Release/packet_socket.node", import.meta.url).pathname;
let loaded: unknown;
/**
 * The speaker's one native addon (packet sockets, the liveness thread, malloc_trim), loaded on first use; each
 * caller names the part of its interface it uses.
 */
export function loadSpeakerAddon<T>(): T {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)(addonPath);
    } catch (cause) {
      throw new AddonNotBuiltError(addonPath, { cause });
    }
  }
  return loaded as T;
}
const addon = (): Addon => loadSpeakerAddon<Addon>();

/** `sll_pkttype` of a received frame, as the kernel classified it by destination MAC. */
export const PacketType = { host: 0, broadcast: 1, multicast: 2, otherHost: 3 } as const;

export interface PacketSocket {
  readonly ifindex: number;
  /** Sends one whole Ethernet frame (destination MAC first). */
  send(frame: Buffer): void;
  /** Also receive (join) or stop receiving frames addressed to this multicast MAC. */
  setMembership(mac: Buffer, join: boolean): void;
  /** Whether the open socket keeps the process alive (it does by default). */
  setRef(ref: boolean): void;
  close(): void;
}

export interface OpenPacketSocketOptions {
  ifindex: number;
  ethertype: number;
  /** Attached before bind: frames it rejects are never queued. */
  filter: BpfProgram;
  onFrame(frame: Buffer, packetType: number): void;
  /** Called when onFrame throws; the receive loop keeps going. */
  onError(err: unknown): void;
}

export function openPacketSocket(options: OpenPacketSocketOptions): PacketSocket {
  const native = addon();
  const { ifindex, onFrame, onError } = options;
  let handle: unknown;
  try {
    handle = native.open(ifindex, options.ethertype, encodeBpfProgram(options.filter), (frame, packetType) => {
      try {
        onFrame(frame, packetType);
      } catch (err) {
        onError(err);
      }
    });
  } catch (cause) {
    throw new PacketSocketError("open", ifindex, { cause });
  }
  let closed = false;
  return {
    ifindex,
    send(frame) {
      try {
        native.send(handle, frame);
      } catch (cause) {
        throw new PacketSocketError("send", ifindex, { cause });
      }
    },
    setMembership(mac, join) {
      try {
        native.setMembership(handle, mac, join);
      } catch (cause) {
        throw new PacketSocketError(join ? "joinMulticast" : "leaveMulticast", ifindex, { cause });
      }
    },
    setRef(ref) {
      if (!closed) native.setRef(handle, ref);
    },
    close() {
      if (closed) return;
      closed = true;
      native.close(handle);
    },
  };
}

/** Kernel `IFF_*` flags this package looks at. */
export const InterfaceFlags = { up: 0x1, broadcast: 0x2, loopback: 0x8, noArp: 0x80, slave: 0x800, lowerUp: 0x10000 } as const;

export interface LinkFacts {
  index: number;
  name: string;
  flags: number;
  /** ARPHRD_* hardware type; 1 is Ethernet. */
  hardwareType: number;
  mac: string | null;
  /** Index of the bridge or bond this link is enslaved to, 0 if none. */
  masterIndex: number;
  /** rtnetlink kind ("veth", "bridge", "bond", …), null for plain devices. */
  kind: string | null;
}

/** All links of this process's network namespace (rtnetlink; needs no capability). */
export function listLinks(): LinkFacts[] {
  return addon()
    .listInterfaces()
    .map((link) => ({
      index: link.index,
      name: link.name,
      flags: link.flags,
      hardwareType: link.type,
      mac: link.mac !== undefined && link.mac.length === 6 ? formatMac(link.mac) : null,
      masterIndex: link.masterIndex,
      kind: link.kind ?? null,
    }));
}
