import { CONFIG_NAMESPACE, LAB_NODE_ASN, LAB_ROUTER_ASN } from "./lab.ts";

/** Which address families the lab's Services and pool use (every host has an IPv4 and an IPv6 address either way). */
export type LabIPFamily = "ipv4" | "ipv6" | "dual";

export const LAB_IP_FAMILIES: readonly LabIPFamily[] = ["ipv4", "ipv6", "dual"];

/**
 * The lab's MetalLB IPAddressPool — addresses .200–.220 of the lab's IPv4 /24 and ::200–::220 of its IPv6 /64, which
 * no lab host uses, as the family asks — and the L2Advertisement for it, as YAML for `kubectl apply -f -`.
 */
export function labPoolManifest(prefixV4: string, options: { ipFamily?: LabIPFamily; prefixV6?: string } = {}): string {
  const family = options.ipFamily ?? "ipv4";
  const addresses: string[] = [];
  if (family !== "ipv6") addresses.push(`${prefixV4}.200-${prefixV4}.220`);
  if (family !== "ipv4") {
    if (options.prefixV6 === undefined) throw new Error(`labPoolManifest: ipFamily ${family} needs prefixV6`);
    addresses.push(`${options.prefixV6}200-${options.prefixV6}220`);
  }
  return `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: ${CONFIG_NAMESPACE}}
spec:
  addresses: [${addresses.join(", ")}]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab, namespace: ${CONFIG_NAMESPACE}}
spec:
  ipAddressPools: [lab-pool]
`;
}

/**
 * BGP mode's configuration as MetalLB documents it: a pool on a subnet of its own (10.253.x.0/24, which only the
 * router's BGP routes lead to), a BFDProfile, a BGPPeer for the lab router (IPv4, BFD) and a BGPAdvertisement
 * for the pool, as YAML for `kubectl apply -f -`. No graceful restart: with it the router keeps a crashed
 * speaker's routes (that is its purpose), and the lab shows a dead speaker's routes going.
 */
export function labBgpManifest(network: { prefixV4: string; router?: { ipv4: string } }): string {
  if (network.router === undefined) throw new Error("the lab has no router: start it with --bgp");
  const octet = network.prefixV4.split(".")[2];
  return `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: ${CONFIG_NAMESPACE}}
spec:
  addresses: [10.253.${octet}.10-10.253.${octet}.30]
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: lab-fast, namespace: ${CONFIG_NAMESPACE}}
spec: {receiveInterval: 200, transmitInterval: 200, detectMultiplier: 3}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: lab-router, namespace: ${CONFIG_NAMESPACE}}
spec:
  myASN: ${LAB_NODE_ASN}
  peerASN: ${LAB_ROUTER_ASN}
  peerAddress: ${network.router.ipv4}
  bfdProfile: lab-fast
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: lab, namespace: ${CONFIG_NAMESPACE}}
spec:
  ipAddressPools: [lab-pool]
`;
}
