// The lab's stand-in for kube-proxy: from LoadBalancer Services and their EndpointSlices, the nft ruleset one
// node needs so that traffic to a load-balancer address reaches a backend. Pure: objects in, ruleset text out.
//
// Like kube-proxy, a node prefers its own ready endpoint; with externalTrafficPolicy Local it uses only its own
// (and drops otherwise). Traffic it sends to another node's endpoint is masqueraded so replies come back
// through it. One endpoint per address and port keeps the rules readable; the ingress does the balancing.

export interface ServicePortLike {
  name?: string;
  port: number;
  protocol?: string;
}

export interface ServiceLike {
  metadata: { name: string; namespace: string };
  spec: { type?: string; externalTrafficPolicy?: string; ports?: ServicePortLike[] };
  status?: { loadBalancer?: { ingress?: { ip?: string }[] } };
}

export interface EndpointSliceLike {
  metadata: { namespace?: string; labels?: Record<string, string> };
  addressType: string;
  endpoints?: { addresses: string[]; nodeName?: string; conditions?: { ready?: boolean } }[];
  ports?: { name?: string; port?: number; protocol?: string }[];
}

export interface NatRule {
  family: 4 | 6;
  protocol: "tcp" | "udp";
  vip: string;
  port: number;
  target: string;
  targetPort: number;
  local: boolean;
}

export const NFT_TABLE = "bollard_lab_proxy";

export function compileNatRules(services: ServiceLike[], slices: EndpointSliceLike[], nodeName: string): NatRule[] {
  const rules: NatRule[] = [];
  for (const svc of services) {
    if (svc.spec.type !== "LoadBalancer") continue;
    const vips = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter((ip): ip is string => !!ip);
    const own = slices.filter(
      (s) =>
        s.metadata.labels?.["kubernetes.io/service-name"] === svc.metadata.name &&
        (s.metadata.namespace === undefined || s.metadata.namespace === svc.metadata.namespace),
    );
    for (const vip of vips) {
      const family = vip.includes(":") ? 6 : 4;
      for (const port of svc.spec.ports ?? []) {
        const protocol = (port.protocol ?? "TCP").toLowerCase() === "udp" ? "udp" : "tcp";
        const candidates: { address: string; port: number; local: boolean }[] = [];
        for (const slice of own) {
          if (slice.addressType !== (family === 4 ? "IPv4" : "IPv6")) continue;
          const slicePort = (slice.ports ?? []).find((p) => (p.name ?? "") === (port.name ?? ""));
          if (slicePort?.port === undefined) continue;
          for (const ep of slice.endpoints ?? []) {
            if (ep.conditions?.ready === false) continue;
            for (const address of ep.addresses) candidates.push({ address, port: slicePort.port, local: ep.nodeName === nodeName });
          }
        }
        candidates.sort((a, b) => Number(b.local) - Number(a.local) || a.address.localeCompare(b.address));
        const chosen = candidates[0];
        if (chosen === undefined) continue;
        if (svc.spec.externalTrafficPolicy === "Local" && !chosen.local) continue;
        rules.push({ family, protocol, vip, port: port.port, target: chosen.address, targetPort: chosen.port, local: chosen.local });
      }
    }
  }
  return rules.sort((a, b) => `${a.vip}:${a.port}`.localeCompare(`${b.vip}:${b.port}`));
}

/** The whole table as one nft transaction: replaced atomically, so no packet sees half a ruleset. */
export function renderNftRuleset(rules: NatRule[], uplink: string): string {
  const lines = rules.map((r) => {
    const match = `${r.family === 4 ? "ip" : "ip6"} daddr ${r.vip} ${r.protocol} dport ${r.port}`;
    const target = r.family === 4 ? `${r.target}:${r.targetPort}` : `[${r.target}]:${r.targetPort}`;
    return `    ${match} dnat ${r.family === 4 ? "ip" : "ip6"} to ${target}`;
  });
  return [
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    ...lines,
    "  }",
    "  chain output {",
    "    type nat hook output priority -100; policy accept;",
    ...lines,
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ct status dnat oifname "${uplink}" masquerade`,
    "  }",
    "}",
    "",
  ].join("\n");
}
