// Which interfaces answer for an address: the rules are pure so they can be tested on made-up links.
import { InterfaceFlags, type LinkFacts } from "../l2/packet-socket.ts";

/**
 * Names that are container, overlay or virtual plumbing rather than the node's LAN: answering ARP
 * there would leak a service address into a pod network. An L2Advertisement that names such an
 * interface overrides this.
 */
export const EXCLUDED_INTERFACE_NAMES =
  /^(lo|docker|cbr|veth|cali|tunl|flannel|kube-ipvs|kube-bridge|cni|vxlan\.calico|lxc|cilium|vethwe|weave|nodelocaldns|genev|virbr)/;

const ARPHRD_ETHER = 1;

export type InterfaceVerdict = { name: string; eligible: true } | { name: string; eligible: false; reason: string };

/** Judges one link; `named` is true when an L2Advertisement lists it by name. */
export function judgeInterface(link: LinkFacts, named: boolean): InterfaceVerdict {
  const no = (reason: string): InterfaceVerdict => ({ name: link.name, eligible: false, reason });
  if ((link.flags & InterfaceFlags.up) === 0) return no("down");
  if ((link.flags & InterfaceFlags.loopback) !== 0) return no("loopback");
  if (link.hardwareType !== ARPHRD_ETHER || link.mac === null) return no("not Ethernet");
  if ((link.flags & InterfaceFlags.broadcast) === 0) return no("not broadcast-capable");
  if ((link.flags & InterfaceFlags.noArp) !== 0) return no("NOARP");
  // A bridge or bond port never owns addresses: its master does, and answers for it.
  if (link.masterIndex !== 0 || (link.flags & InterfaceFlags.slave) !== 0) return no("bridge or bond port");
  if (!named && EXCLUDED_INTERFACE_NAMES.test(link.name)) return no("excluded by name");
  return { name: link.name, eligible: true };
}

/** The links an address is answered on: every eligible one for "all", else the named eligible ones. */
export function selectInterfaces(links: readonly LinkFacts[], wanted: "all" | readonly string[]): { eligible: LinkFacts[]; verdicts: InterfaceVerdict[] } {
  const candidates = wanted === "all" ? links : links.filter((link) => wanted.includes(link.name));
  const verdicts = candidates.map((link) => judgeInterface(link, wanted !== "all"));
  const eligibleNames = new Set(verdicts.filter((v) => v.eligible).map((v) => v.name));
  if (wanted !== "all") {
    for (const name of wanted) if (!candidates.some((l) => l.name === name)) verdicts.push({ name, eligible: false, reason: "no such interface" });
  }
  return { eligible: candidates.filter((link) => eligibleNames.has(link.name)), verdicts };
}
