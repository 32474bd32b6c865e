// Watches one interface for gratuitous ARP (a broadcast request whose sender and target address are the
// same) and prints one JSON line per frame: {"mac": sender MAC, "ip": address, "at": ms since the epoch}.
// Runs in the client's namespace, so a test sees what the LAN saw rather than what a speaker says it sent.
// argv: interface name. Prints "ready" once the socket is open; ends on SIGTERM.
import { arpRequestFilter } from "../../src/l2/bpf.ts";
import { decodeArpFrame, ETHERTYPE_ARP } from "../../src/l2/frames.ts";
import { listLinks, openPacketSocket } from "../../src/l2/packet-socket.ts";

const ifname = process.argv[2] as string;
const link = listLinks().find((l) => l.name === ifname);
if (link === undefined) {
  process.stderr.write(`no interface ${ifname}\n`);
  process.exit(2);
}
const socket = openPacketSocket({
  ifindex: link.index,
  ethertype: ETHERTYPE_ARP,
  filter: arpRequestFilter,
  onError: (err) => process.stderr.write(`${String(err)}\n`),
  onFrame(frame) {
    const decoded = decodeArpFrame(frame);
    if (!decoded.ok || decoded.value.arp.senderIp !== decoded.value.arp.targetIp) return;
    process.stdout.write(`${JSON.stringify({ mac: decoded.value.arp.senderMac, ip: decoded.value.arp.senderIp, at: Date.now() })}\n`);
  },
});
process.on("SIGTERM", () => socket.close());
process.stdout.write("ready\n");
