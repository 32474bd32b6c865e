// This node's BGP sessions, kept to a desired state: one BgpSession per BGPPeer selecting the node, replaced
// when its options change, stopped when the peer goes, fed the routes the announcement rules give it.
import { type BfdState, BfdThreadSession, BgpSession, type Route, type SessionState } from "@bollard/bgp";
import type { BgpAnnouncement } from "./announce.ts";
import type { PeerSession } from "./peers.ts";
import { bgpSocket } from "./tcp-socket.ts";

/** The routes each peer should have from `node`: one per prefix, attributes of the announcements merged. */
export function routesForNode(announcements: readonly BgpAnnouncement[], node: string): Map<string, Route[]> {
  const byPeer = new Map<string, Map<string, Route>>();
  for (const a of announcements) {
    if (a.node !== node) continue;
    const routes = byPeer.get(a.peer) ?? new Map<string, Route>();
    byPeer.set(a.peer, routes);
    const existing = routes.get(a.prefix);
    const communities = [...new Set([...(existing?.communities ?? []), ...a.communities])].sort((x, y) => x - y);
    const large = [...new Map([...(existing?.largeCommunities ?? []), ...a.largeCommunities].map((c) => [c.join(":"), c])).values()];
    const route: Route = { prefix: a.prefix };
    if (communities.length > 0) route.communities = communities;
    if (large.length > 0) route.largeCommunities = large;
    const localPref = Math.max(existing?.localPref ?? -1, a.localPref ?? -1);
    if (localPref >= 0) route.localPref = localPref;
    routes.set(a.prefix, route);
  }
  return new Map([...byPeer].map(([peer, routes]) => [peer, [...routes.values()].sort((x, y) => x.prefix.localeCompare(y.prefix))]));
}

type Running = { key: string; session: BgpSession; bfd?: BfdThreadSession };

export type SessionHooks = {
  /** The BGP session's state changed. */
  onState?: (peer: string, change: { from: SessionState; to: SessionState }) => void;
  /** UPDATE messages went to the peer. */
  onUpdatesSent?: (peer: string, count: number) => void;
  /** The BFD session's state changed; a Down after Up has just taken the BGP session down. */
  onBfdState?: (peer: string, change: { from: BfdState; to: BfdState; diagnostic: number; peerRestarted?: true }) => void;
  /** The BFD session could not start (its address or port is taken, the address is not local). */
  onBfdError?: (peer: string, err: Error) => void;
};

/**
 * This node's sessions, one per BGPPeer. A session whose options change is replaced; one whose peer goes is
 * stopped with Cease, so the peer withdraws at once. With BFD, the BFD session's Down (the peer, or the path
 * to it, is dead as far as BFD can tell) resets the BGP session: routes go with it and come back when the
 * session is re-established.
 */
export class BgpSessions {
  private running = new Map<string, Running>();
  private readonly hooks: SessionHooks;

  constructor(hooks: SessionHooks = {}) {
    this.hooks = hooks;
  }

  /** Brings the sessions to `desired` (peer name → session and routes); returns when removed ones have stopped. */
  async update(desired: ReadonlyMap<string, { session: PeerSession; routes: Route[] }>): Promise<void> {
    const stopping: Promise<void>[] = [];
    for (const [peer, running] of this.running) {
      const want = desired.get(peer);
      if (want && JSON.stringify(want.session) === running.key) continue;
      this.running.delete(peer);
      stopping.push(running.session.stop(), ...(running.bfd ? [running.bfd.stop()] : []));
    }
    await Promise.all(stopping);
    for (const [peer, { session: config, routes }] of desired) {
      let running = this.running.get(peer);
      if (!running) {
        running = this.open(peer, config);
        running.session.setRoutes(routes);
        running.session.start();
      } else {
        running.session.setRoutes(routes);
      }
    }
  }

  private open(peer: string, config: PeerSession): Running {
    const { password, ttl } = config;
    const session = new BgpSession({ ...config.options, createSocket: (address) => bgpSocket(address, { ...(password ? { password } : {}), ttl }) });
    session.on("state", (change) => this.hooks.onState?.(peer, change));
    session.on("sent", ({ updates }) => this.hooks.onUpdatesSent?.(peer, updates));
    const running: Running = { key: JSON.stringify(config), session };
    this.running.set(peer, running);
    if (config.bfd) {
      const { localAddress, ...timers } = config.bfd;
      // On a thread of its own: a busy event loop here (a reconcile under churn) must not hold its packets back
      // past the peer's detection time, which would reset the BGP session and re-send the whole table.
      const bfd = new BfdThreadSession({ ...timers, peerAddress: config.options.peerAddress, localAddress });
      running.bfd = bfd;
      bfd.on("failed", (err) => this.hooks.onBfdError?.(peer, err));
      bfd.on("state", (change) => {
        this.hooks.onBfdState?.(peer, change);
        // RFC 5882 §4.3: BFD Down means the path is gone; the BGP session follows at once instead of after
        // its hold time. It is restarted and comes back when the peer answers again. Not when the peer merely
        // re-created its BFD session (FRR does when BGP comes up): its packets show the path is alive.
        if (change.from === "Up" && change.to === "Down" && !change.peerRestarted && this.running.get(peer) === running) {
          void session.stop().then(() => {
            if (this.running.get(peer) === running) session.start();
          });
        }
      });
      bfd.start().catch((err: Error) => this.hooks.onBfdError?.(peer, err));
    }
    return running;
  }

  state(peer: string): SessionState | undefined {
    return this.running.get(peer)?.session.state;
  }

  /** Per peer: its BGP and BFD state and how many prefixes it has from us or is still waiting for. */
  status(): Map<string, { state: SessionState; bfd?: BfdState; advertised: number; pending: number }> {
    return new Map(
      [...this.running].map(([peer, r]) => [
        peer,
        { state: r.session.state, ...(r.bfd ? { bfd: r.bfd.sessionState } : {}), advertised: r.session.advertisedCount, pending: r.session.pendingCount },
      ]),
    );
  }

  /**
   * Stops every session. `gracefulRestart`: the peers that agreed to graceful restart keep our routes (the
   * connection is closed without a NOTIFICATION, RFC 4724); others get Cease and withdraw them.
   */
  async stop(options: { gracefulRestart?: boolean } = {}): Promise<void> {
    const running = [...this.running.values()];
    this.running.clear();
    await Promise.all(
      running.flatMap((r) => {
        const keep = options.gracefulRestart === true && r.session.options.gracefulRestart !== undefined;
        // BFD says AdminDown either way: RFC 5882 §3.2 has the peer take that for no failure, so the BGP
        // session's own ending (Cease, or a bare close for graceful restart) decides what happens to the routes.
        return [keep ? r.session.abandon() : r.session.stop(), ...(r.bfd ? [r.bfd.stop()] : [])];
      }),
    );
  }
}
