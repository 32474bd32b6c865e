// This node's BGP sessions, kept to a desired state: one BgpSession per BGPPeer selecting the node, replaced
// when its options change, stopped when the peer goes, fed the routes the announcement rules give it.
import { BgpSession, type Route, type SessionState } from "@bollard/bgp";
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

type Running = { key: string; session: BgpSession };

export class BgpSessions {
  private running = new Map<string, Running>();
  private readonly onState: (peer: string, state: SessionState) => void;

  constructor(options: { onState?: (peer: string, state: SessionState) => void } = {}) {
    this.onState = options.onState ?? (() => {});
  }

  /** Brings the sessions to `desired` (peer name → session and routes); returns when removed ones have stopped. */
  async update(desired: ReadonlyMap<string, { session: PeerSession; routes: Route[] }>): Promise<void> {
    const stopping: Promise<void>[] = [];
    for (const [peer, running] of this.running) {
      const want = desired.get(peer);
      if (want && JSON.stringify(want.session) === running.key) continue;
      this.running.delete(peer);
      stopping.push(running.session.stop());
    }
    await Promise.all(stopping);
    for (const [peer, { session: config, routes }] of desired) {
      let running = this.running.get(peer);
      if (!running) {
        const { password, ttl } = config;
        const session = new BgpSession({ ...config.options, createSocket: (address) => bgpSocket(address, { ...(password ? { password } : {}), ttl }) });
        session.on("state", ({ to }) => this.onState(peer, to));
        running = { key: JSON.stringify(config), session };
        this.running.set(peer, running);
        session.setRoutes(routes);
        session.start();
      } else {
        running.session.setRoutes(routes);
      }
    }
  }

  state(peer: string): SessionState | undefined {
    return this.running.get(peer)?.session.state;
  }

  async stop(): Promise<void> {
    await this.update(new Map());
  }
}
