// The whole speaker: two real `bollard speaker` processes (nobody + CAP_NET_RAW) in node namespaces, started
// at the same moment, a real kube-apiserver reachable from them, and the client checking what the LAN sees
// — only the elected node ever answers or announces, the status and event are written by it alone,
// answering survives the API server going away, and when the elected node dies the other takes over,
// moves the client's neighbour entry with gratuitous ARP and removes the dead node's ServiceL2Status.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { execIn, type LabHost } from "@bollard/lab";
import { arpingMacs, ndisc6Mac, neighbourMac, waitFor } from "./helpers/netns.ts";
import { startSpeakerLab, type SpeakerLab } from "./helpers/speaker-lab.ts";

describe("bollard speaker in a lab", () => {
  let lab: SpeakerLab;
  let winner: LabHost;
  let other: LabHost;
  const arping = (count?: number) => arpingMacs(lab.net.client.netns, lab.net.client.ifname, lab.vip4, count);
  /** What each speaker logged about its membership view: for assertion messages. */
  const membershipHistory = () =>
    lab.net.nodes
      .map((h) => `${h.name}: ${lab.logs(h, "membership changed").map((l) => JSON.stringify({ time: l.time, joined: l.joined, left: l.left })).join(" ")}`)
      .join("\n");
  /** The nodes named by the ServiceL2Status objects that exist now. */
  const statusNodes = async () => (await lab.l2Statuses()).map((s) => s.status?.node ?? `unwritten:${s.metadata.labels?.["metallb.io/node"]}`).sort();
  const setEndpointReady = (ready: boolean) =>
    lab.api("PATCH", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-1", {
      endpoints: [{ addresses: [(lab.net.nodes[0] as LabHost).ipv4], conditions: { ready }, nodeName: "node1" }],
    });

  before(async () => {
    lab = await startSpeakerLab();
    ({ winner, other } = lab);
    lab.startSpeakers(lab.net.nodes);
  });
  after(async () => {
    await lab?.close();
  });

  it("only the elected node answers ARP and NDP for the Service's addresses", async () => {
    await waitFor("an ARP answer", async () => ((await arping(1)).length > 0 ? true : undefined), 60_000);
    assert.deepEqual([...new Set(await arping())], [winner.mac]);
    await execIn(lab.net.client.netns, "ping", ["-c", "1", "-W", "1", lab.vip4], { allowFailure: true });
    assert.equal(await neighbourMac(lab.net.client.netns, lab.vip4), winner.mac);
    assert.equal(await ndisc6Mac(lab.net.client.netns, lab.net.client.ifname, lab.vip6), winner.mac);
  });

  it("writes a ServiceL2Status and a nodeAssigned event", async () => {
    const status = await waitFor("a written ServiceL2Status", async () => (await lab.l2Statuses()).find((i) => i.status?.node !== undefined)?.status);
    assert.deepEqual(status, { node: winner.name, serviceName: "web", serviceNamespace: "default", interfaces: [{ name: "eth0" }] });
    await waitFor("a nodeAssigned event from the elected node", async () => ((await lab.nodeAssignedEvents()).has(winner.name) ? true : undefined));
  });

  it("started together, the node that loses never announced: no gratuitous ARP, answer, Event or ServiceL2Status from it", async (t) => {
    // The winner's take-over burst lasts 5 s; wait it out so that everything either node sent is in.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    const garps = lab.garps();
    const fromWinner = garps.filter((g) => g.mac === winner.mac).length;
    const fromOther = garps.filter((g) => g.mac === other.mac).length;
    const first = garps[0]?.at ?? 0;
    t.diagnostic(
      `gratuitous ARP seen by the client at start-up: ${fromWinner} from ${winner.name} (elected), ${fromOther} from ${other.name}; ms after the first: ${garps.map((g) => `${g.at - first}${g.mac === winner.mac ? "" : "(loser)"}`).join(" ")}`,
    );
    assert.ok(fromWinner > 0, "the client saw the elected node's gratuitous ARP");
    assert.equal(fromOther, 0, `the client saw gratuitous ARP from the node that lost\n${membershipHistory()}`);
    assert.equal(await lab.metric(other, "bollard_speaker_layer2_gratuitous_sent_total"), 0);
    assert.equal(await lab.metric(other, "bollard_speaker_layer2_responses_sent_total"), 0);
    assert.ok((await lab.metric(winner, "bollard_speaker_layer2_gratuitous_sent_total")) > 0);
    assert.deepEqual([...(await lab.nodeAssignedEvents()).keys()], [winner.name]);
    assert.deepEqual(lab.l2StatusCreators(), [winner.name]);
  });

  it("keeps answering while the API server is gone", async () => {
    await lab.cp.stopApiServer();
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.deepEqual([...new Set(await arping())], [winner.mac]);
    } finally {
      await lab.cp.startApiServer();
      // Custom resources answer 429 for a moment after a restart, while their storage initialises.
      await waitFor("ServiceL2Status to be served again", () => lab.l2Statuses().then(() => true, () => undefined));
    }
  });

  it("keeps answering from the same node, alone, while the elected speaker's event loop is blocked for 2 s", async (t) => {
    const statusesBefore = await statusNodes();
    const garpsBefore = lab.garps().length;
    const leftBefore = lab.logs(other, "membership changed").length;
    const stalledBefore = lab.logs(winner, "test hook: blocking the event loop").length;
    const otherAnswersBefore = await lab.metric(other, "bollard_speaker_layer2_responses_sent_total");
    // arping from the client throughout: 30 requests 0.2 s apart (6 s), the block starting 1 s in.
    const arpingRun = execIn(lab.net.client.netns, "arping", ["-c", "30", "-W", "0.2", "-w", "10", "-I", lab.net.client.ifname, lab.vip4], { allowFailure: true });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    lab.signalSpeaker(winner, "SIGUSR2");
    const { stdout } = await arpingRun;
    const macs = [...stdout.matchAll(/bytes from ([0-9a-f:]{17}) /gi)].map((m) => (m[1] as string).toLowerCase());
    await waitFor("the winner to log the block", async () => (lab.logs(winner, "test hook: blocking the event loop").length > stalledBefore ? true : undefined));
    const stalled = lab.logs(winner, "this process did not run for a while; membership deadlines moved by as much");
    t.diagnostic(`${macs.length} of 30 ARP requests answered during the block; the winner's stall notes: ${stalled.map((l) => l.ms).join(", ")}`);
    assert.deepEqual([...new Set(macs)], [winner.mac], "only the elected node answered");
    assert.ok(macs.length >= 27, `${macs.length} of 30 requests answered`);
    assert.equal(lab.garps().slice(garpsBefore).filter((g) => g.mac === other.mac).length, 0, "the other node sent no gratuitous ARP");
    assert.equal(await lab.metric(other, "bollard_speaker_layer2_responses_sent_total"), otherAnswersBefore, "the other node answered nothing");
    assert.deepEqual(lab.logs(other, "membership changed").slice(leftBefore), [], `the other node's view did not change\n${membershipHistory()}`);
    assert.deepEqual(await statusNodes(), statusesBefore, "the ServiceL2Status did not move");
    assert.equal(await neighbourMac(lab.net.client.netns, lab.vip4), winner.mac);
  });

  it("when the elected node dies, the other takes over, the client's entry follows and the dead node's ServiceL2Status goes", async (t) => {
    assert.equal(await neighbourMac(lab.net.client.netns, lab.vip4), winner.mac, `the client has an entry to update\n${membershipHistory()}`);
    assert.deepEqual(await statusNodes(), [winner.name], membershipHistory());
    const killedAt = Date.now();
    await lab.stopSpeaker(winner, "SIGKILL");
    // The client sends nothing: only the new announcer's gratuitous ARP can change the entry.
    await waitFor("the client's entry to move to the other node", async () => ((await neighbourMac(lab.net.client.netns, lab.vip4)) === other.mac ? true : undefined));
    const takeover = lab.garps().find((g) => g.mac === other.mac && g.at >= killedAt);
    t.diagnostic(`SIGKILL of ${winner.name} → first gratuitous ARP from ${other.name} seen by the client: ${takeover === undefined ? "none" : `${takeover.at - killedAt} ms`}`);
    assert.deepEqual([...new Set(await arping())], [other.mac]);
    // Nobody but the new announcer could remove the killed node's object.
    await waitFor("only the new announcer's ServiceL2Status", async () => ((await statusNodes()).join() === other.name ? true : undefined));
  });

  it("a returning node takes its addresses back without two nodes answering", async () => {
    lab.startSpeakers([winner]);
    await waitFor(
      "the returning node to answer again",
      async () => {
        const macs = new Set(await arping(1));
        return macs.size === 1 && macs.has(winner.mac) ? true : undefined;
      },
      30_000,
    );
    assert.deepEqual([...new Set(await arping())], [winner.mac]);
    await waitFor("only the returning node's ServiceL2Status", async () => ((await statusNodes()).join() === winner.name ? true : undefined));
  });

  it("a node that died announcing removes its own ServiceL2Status when it returns to find nothing to announce", async () => {
    await lab.stopSpeaker(other);
    await lab.stopSpeaker(winner, "SIGKILL");
    assert.deepEqual(await statusNodes(), [winner.name], "the killed node left its object behind");
    // While it is down the Service loses its endpoints: no node is elected, so no peer removes the object.
    await setEndpointReady(false);
    lab.startSpeakers(lab.net.nodes);
    await waitFor("both speakers to count each other", async () => {
      const sizes = await Promise.all(lab.net.nodes.map((h) => lab.metric(h, "bollard_speaker_members").catch(() => 0)));
      return sizes.every((n) => n === 2) ? true : undefined;
    }, 60_000);
    await waitFor("the stale ServiceL2Status to be gone", async () => ((await statusNodes()).length === 0 ? true : undefined));
    assert.deepEqual(await arping(), [], "nobody answers for a Service without ready endpoints");
    await setEndpointReady(true);
    await waitFor("the elected node to announce again", async () => ((await statusNodes()).join() === winner.name ? true : undefined));
    assert.deepEqual([...new Set(await arping())], [winner.mac]);
  });
});
