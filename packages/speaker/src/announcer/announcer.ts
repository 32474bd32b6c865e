// Holds the addresses this node announces and the per-interface responders that answer for them.
// The owned state is one immutable value replaced by a single assignment, and each responder's table in
// the liveness thread is replaced right after it, so the answers never wait on the election, the API
// server or the event loop.
import type { Logger } from "@bollard/core";
import { canonicalIP } from "../l2/address-bytes.ts";
import { type LinkFacts, listLinks } from "../l2/packet-socket.ts";
import { type InterfaceVerdict, selectInterfaces } from "./interfaces.ts";
import type { AnnouncerMetrics } from "./metrics.ts";
import { type InterfaceResponder, openInterfaceResponder } from "./responder.ts";

/** MetalLB's cadence after a take-over: Linux ignores ARP updates for `locktime` (1 s) after one. */
export const GRATUITOUS_INTERVAL_MS = 1100;
export const GRATUITOUS_DURATION_MS = 5000;

export interface OwnedAddress {
  ip: string;
  /** namespace/name of the Service (or Services, comma-joined, when they share the address). */
  service: string;
  interfaces: "all" | readonly string[];
}

export interface AnnounceOutcome {
  ip: string;
  service: string;
  /** Interfaces answering for the address; empty means it could not be announced (see verdicts). */
  interfaces: string[];
  verdicts: InterfaceVerdict[];
}

export interface Announcer {
  /** Replaces the owned addresses: new ones are announced at once, dropped ones stop being answered. */
  setOwned(addresses: readonly OwnedAddress[]): AnnounceOutcome[];
  /** Restarts the gratuitous burst for every owned address (after a partition heals). */
  reannounce(): void;
  /** Addresses answered right now, by interface name. */
  owned(): ReadonlyMap<string, ReadonlySet<string>>;
  close(): void;
}

export interface AnnouncerOptions {
  logger: Logger;
  metrics: AnnouncerMetrics;
  /** Re-send one gratuitous frame per address this often (0: never); for switches that age out FDB entries. */
  garpRefreshMs: number;
  /** How often to look for interfaces that came or went. */
  rescanMs?: number;
}

const EMPTY: ReadonlyMap<string, ReadonlySet<string>> = new Map();

export function createAnnouncer(options: AnnouncerOptions): Announcer {
  const { logger, metrics } = options;
  const log = logger.child({ component: "announcer" });
  /** interface name → addresses it answers for. Replaced, never mutated. */
  let state: ReadonlyMap<string, ReadonlySet<string>> = EMPTY;
  let wanted: readonly OwnedAddress[] = [];
  const responders = new Map<string, InterfaceResponder>();
  const bursts = new Map<string, { timer: NodeJS.Timeout; until: number }>();
  let closed = false;

  const interfacesOf = (ip: string) => [...state].filter(([, ips]) => ips.has(ip)).map(([name]) => name);

  const sendGratuitous = (ip: string) => {
    for (const name of interfacesOf(ip)) responders.get(name)?.sendGratuitous(ip);
  };

  const startBurst = (ip: string) => {
    stopBurst(ip);
    sendGratuitous(ip);
    const until = Date.now() + GRATUITOUS_DURATION_MS;
    const timer = setInterval(() => {
      if (Date.now() >= until) {
        stopBurst(ip);
        return;
      }
      sendGratuitous(ip);
    }, GRATUITOUS_INTERVAL_MS);
    bursts.set(ip, { timer, until });
  };

  const stopBurst = (ip: string) => {
    const burst = bursts.get(ip);
    if (burst === undefined) return;
    clearInterval(burst.timer);
    bursts.delete(ip);
  };

  const apply = (addresses: readonly OwnedAddress[]): AnnounceOutcome[] => {
    if (closed) return [];
    wanted = addresses;
    let links: LinkFacts[];
    try {
      links = listLinks();
    } catch (err) {
      log.error({ err }, "listing interfaces failed; keeping the current ones");
      links = [...responders.values()].map((r) => r.link);
    }
    // A responder whose interface vanished or was re-created (new index) holds a dead socket.
    for (const [name, responder] of responders) {
      if (!links.some((l) => l.name === name && l.index === responder.link.index)) {
        responder.close();
        responders.delete(name);
      }
    }
    const next = new Map<string, Set<string>>();
    const outcomes: AnnounceOutcome[] = [];
    for (const address of addresses) {
      const ip = canonicalIP(address.ip);
      if (ip === null) continue;
      const { eligible, verdicts } = selectInterfaces(links, address.interfaces);
      const answering: string[] = [];
      for (const link of eligible) {
        if (!responders.has(link.name)) {
          try {
            responders.set(link.name, openInterfaceResponder({ link, metrics, logger: log }));
          } catch (err) {
            log.error({ err, interface: link.name }, "cannot open packet sockets");
            verdicts.push({ name: link.name, eligible: false, reason: `packet socket: ${(err as Error).message}` });
            continue;
          }
        }
        answering.push(link.name);
        const set = next.get(link.name) ?? new Set<string>();
        set.add(ip);
        next.set(link.name, set);
      }
      outcomes.push({ ip, service: address.service, interfaces: answering, verdicts });
    }

    const previous = state;
    state = next; // the swap, pushed to each interface's table in the liveness thread below

    for (const [name, responder] of responders) {
      const ips = next.get(name);
      if (ips === undefined) {
        responder.close();
        responders.delete(name);
        continue;
      }
      responder.setOwned(ips);
      try {
        responder.setSolicitedNodeGroups([...ips].filter((ip) => ip.includes(":")));
      } catch (err) {
        log.warn({ err, interface: name }, "joining solicited-node groups failed");
      }
    }
    const wasOwned = (ip: string, name: string) => previous.get(name)?.has(ip) ?? false;
    const nowOwned = new Set([...next.values()].flatMap((ips) => [...ips]));
    for (const ip of bursts.keys()) if (!nowOwned.has(ip)) stopBurst(ip);
    for (const ip of nowOwned) {
      // New on any interface (a take-over, or an interface that came up): tell the LAN at once.
      if (interfacesOf(ip).some((name) => !wasOwned(ip, name))) {
        log.info({ ip, interfaces: interfacesOf(ip) }, "announcing");
        startBurst(ip);
      }
    }
    for (const [name, ips] of previous) {
      for (const ip of ips) if (!nowOwned.has(ip)) log.info({ ip, interface: name }, "stopped announcing");
    }
    return outcomes;
  };

  const syncMetrics = () => {
    for (const responder of responders.values()) responder.syncMetrics();
  };
  metrics.collectors.add(syncMetrics);
  const rescan = setInterval(() => apply(wanted), options.rescanMs ?? 10_000);
  rescan.unref();
  const refresh =
    options.garpRefreshMs > 0
      ? setInterval(() => {
          for (const ips of state.values()) for (const ip of ips) if (!bursts.has(ip)) sendGratuitous(ip);
        }, options.garpRefreshMs)
      : undefined;

  return {
    setOwned: apply,
    reannounce() {
      for (const ip of new Set([...state.values()].flatMap((ips) => [...ips]))) startBurst(ip);
    },
    owned: () => state,
    close() {
      if (closed) return;
      closed = true;
      metrics.collectors.delete(syncMetrics);
      clearInterval(rescan);
      if (refresh !== undefined) clearInterval(refresh);
      for (const ip of [...bursts.keys()]) stopBurst(ip);
      state = EMPTY;
      for (const responder of responders.values()) responder.close();
      responders.clear();
    },
  };
}
