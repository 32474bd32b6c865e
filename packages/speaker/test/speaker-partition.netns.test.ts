// Split brain and its end: two real `bollard speaker` processes whose membership heartbeats are dropped
// between them (nft in each node's namespace, membership UDP only: ARP, the API server and everything
// else still flow). Both then announce the address, as MetalLB accepts while partitioned; once the
// partition heals, only the elected node answers and the client's neighbour entry — left pointing at
// the other node — is moved back by the elected node's gratuitous ARP alone.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { execIn, type LabHost } from "@bollard/lab";
import { DEFAULT_MEMBERSHIP_PORT } from "../src/membership/membership.ts";
import { arpingMacs, neighbourMac, waitFor } from "./helpers/netns.ts";
import { startSpeakerLab, type SpeakerLab } from "./helpers/speaker-lab.ts";

const TABLE = "bollard_partition_test";

describe("bollard speaker across a network partition", () => {
  let lab: SpeakerLab;
  let winner: LabHost;
  let other: LabHost;
  const arping = async (count?: number) => [...new Set(await arpingMacs(lab.net.client.netns, lab.net.client.ifname, lab.vip4, count))].sort();
  const members = (host: LabHost) => lab.metric(host, "bollard_speaker_members");
  const statusNodes = async () => (await lab.l2Statuses()).map((s) => s.status?.node ?? `unwritten:${s.metadata.labels?.["metallb.io/node"]}`).sort();

  /** Drops membership datagrams from `peer` in `host`'s namespace. */
  const dropMembershipFrom = (host: LabHost, peer: LabHost) =>
    execIn(host.netns, "nft", ["-f", "-"], {
      input: [
        `table inet ${TABLE} {`,
        "  chain input {",
        "    type filter hook input priority 0; policy accept;",
        `    ip saddr ${peer.ipv4} udp dport ${DEFAULT_MEMBERSHIP_PORT} counter drop`,
        "  }",
        "}",
      ].join("\n"),
    });
  const heal = (host: LabHost) => execIn(host.netns, "nft", ["delete", "table", "inet", TABLE], { allowFailure: true });

  before(async () => {
    lab = await startSpeakerLab();
    ({ winner, other } = lab);
    lab.startSpeakers(lab.net.nodes);
  });
  after(async () => {
    if (lab) for (const host of lab.net.nodes) await heal(host);
    await lab?.close();
  });

  it("before the partition only the elected node answers", async () => {
    await waitFor("the elected node to answer", async () => ((await arping(1)).join() === winner.mac ? true : undefined), 60_000);
    await waitFor("both speakers to count each other", async () => ((await members(winner)) === 2 && (await members(other)) === 2 ? true : undefined));
    assert.deepEqual(await arping(), [winner.mac]);
  });

  it("while partitioned, each side counts itself alone and both answer", async () => {
    await dropMembershipFrom(winner, other);
    await dropMembershipFrom(other, winner);
    await waitFor("each side to count itself alone", async () => ((await members(winner)) === 1 && (await members(other)) === 1 ? true : undefined));
    await waitFor("both nodes to answer ARP", async () => ((await arping()).length === 2 ? true : undefined));
    assert.deepEqual(await arping(), [winner.mac, other.mac].sort());
  });

  it("after the partition heals only the elected node answers, and its gratuitous ARP moves the client back", async (t) => {
    // The client followed the other side (as a switch or client may have): only a gratuitous ARP from
    // the elected node can move this entry back, as the client sends nothing for the address from here on.
    await execIn(lab.net.client.netns, "ip", ["neigh", "replace", lab.vip4, "lladdr", other.mac, "dev", lab.net.client.ifname, "nud", "stale"]);
    const garpsBefore = lab.garps().length;
    const healedAt = Date.now();
    await heal(winner);
    await heal(other);
    await waitFor("the client's entry to point at the elected node again", async () => ((await neighbourMac(lab.net.client.netns, lab.vip4)) === winner.mac ? true : undefined));
    const movedAt = Date.now();
    const afterHeal = lab.garps().slice(garpsBefore);
    const firstFromWinner = afterHeal.find((g) => g.mac === winner.mac);
    t.diagnostic(
      `healed → client's entry back on ${winner.name}: ${movedAt - healedAt} ms (polled every 100 ms); first gratuitous ARP from ${winner.name} ${firstFromWinner === undefined ? "none" : `${firstFromWinner.at - healedAt} ms`} after the heal`,
    );
    assert.ok(firstFromWinner !== undefined, "the elected node re-announced with gratuitous ARP");
    await waitFor("only the elected node to answer", async () => ((await arping()).join() === winner.mac ? true : undefined));
    assert.deepEqual(await arping(), [winner.mac]);
    assert.equal(await neighbourMac(lab.net.client.netns, lab.vip4), winner.mac);
    assert.equal(await lab.metric(other, "bollard_speaker_announced"), 0, "the other node announces nothing");
    await waitFor("only the elected node's ServiceL2Status", async () => ((await statusNodes()).join() === winner.name ? true : undefined));
  });
});
