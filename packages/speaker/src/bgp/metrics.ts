// MetalLB's BGP metrics (metallb_bgp_session_up, metallb_bgp_updates_total, metallb_bgp_announced_prefixes_total,
// metallb_bgp_pending_prefixes_total, metallb_bfd_session_up, metallb_bfd_session_down_events) under the
// speaker's prefix, labelled by the peer's address as MetalLB labels them.
import { Counter, Gauge, type Registry } from "prom-client";

export interface BgpMetrics {
  sessionUp: Gauge<"peer">;
  updatesSent: Counter<"peer">;
  bfdSessionUp: Gauge<"peer">;
  bfdSessionDownEvents: Counter<"peer">;
}

/** `prefixes` is read at scrape time: per peer address, prefixes advertised and waiting to be sent. */
export function createBgpMetrics(registry: Registry, prefixes: () => Map<string, { advertised: number; pending: number }>): BgpMetrics {
  const registers = [registry];
  new Gauge({
    name: "bollard_speaker_bgp_announced_prefixes_total",
    help: "Prefixes this node currently announces on the BGP session, by peer address",
    labelNames: ["peer"],
    registers,
    collect() {
      this.reset();
      for (const [peer, { advertised }] of prefixes()) this.set({ peer }, advertised);
    },
  });
  new Gauge({
    name: "bollard_speaker_bgp_pending_prefixes_total",
    help: "Prefixes that should be announced or withdrawn on the BGP session but are not yet, by peer address",
    labelNames: ["peer"],
    registers,
    collect() {
      this.reset();
      for (const [peer, { pending }] of prefixes()) this.set({ peer }, pending);
    },
  });
  return {
    sessionUp: new Gauge({ name: "bollard_speaker_bgp_session_up", help: "1 while the BGP session to the peer is Established", labelNames: ["peer"], registers }),
    updatesSent: new Counter({ name: "bollard_speaker_bgp_updates_total", help: "BGP UPDATE messages sent to the peer", labelNames: ["peer"], registers }),
    bfdSessionUp: new Gauge({ name: "bollard_speaker_bfd_session_up", help: "1 while the BFD session to the peer is Up", labelNames: ["peer"], registers }),
    bfdSessionDownEvents: new Counter({
      name: "bollard_speaker_bfd_session_down_events_total",
      help: "Times the BFD session to the peer went from Up to Down",
      labelNames: ["peer"],
      registers,
    }),
  };
}
