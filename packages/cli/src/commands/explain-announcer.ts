// `bollard explain announcer -f PATH [-f PATH …] [--live-nodes n1,n2,…]`: which node announces each
// Service address at layer 2, and why nobody does, from manifests on disk, by the speaker's election. With
// BGPPeers or BGPAdvertisements among the manifests, also which nodes announce which prefix to which peers over
// BGP, with which communities and local-pref (the speaker's BGP announcement rules).
import { ManifestError, readManifests } from "@bollard/core";
import { type BgpAnnouncementInput, type ElectionInput, electAnnouncers, groupBgpObjects, groupObjects, ObjectShapeError, planBgpAnnouncements } from "@bollard/speaker";
import { CliUsageError, type Command, parseFlags } from "../command.ts";

const usage = "usage: bollard explain announcer -f PATH [-f PATH …] [--live-nodes n1,n2,…] [--ignore-exclude-lb]";

export const command: Command = async (argv) => {
  const { values } = parseFlags(argv, {
    file: { type: "string", short: "f", multiple: true },
    "live-nodes": { type: "string" },
    "ignore-exclude-lb": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(
      `${usage}\n` +
        "  -f PATH              a YAML/JSON file or a directory of them (repeatable): Nodes, Services,\n" +
        "                       EndpointSlices, IPAddressPools, L2Advertisements; BGPPeers,\n" +
        "                       BGPAdvertisements, Communities for BGP mode\n" +
        "  --live-nodes LIST    nodes whose speaker is alive, comma-separated (default: every Node)\n" +
        "  --ignore-exclude-lb  let nodes labelled exclude-from-external-load-balancers announce\n",
    );
    return 0;
  }
  if (!values.file?.length) throw new CliUsageError(`-f PATH is required\n${usage}`);
  const liveNodes = values["live-nodes"];
  const liveSpeakers =
    liveNodes === undefined
      ? null
      : new Set(
          liveNodes
            .split(",")
            .map((n) => n.trim())
            .filter((n) => n !== ""),
        );

  const grouped: Omit<ElectionInput, "liveSpeakers" | "lastGoodPools"> = { nodes: [], services: [], endpointSlices: [], pools: [], advertisements: [] };
  const all: unknown[] = [];
  for (const file of await readManifests(values.file)) {
    all.push(...file.objects);
    let objects: ReturnType<typeof groupObjects>;
    try {
      objects = groupObjects(file.objects);
    } catch (err) {
      if (err instanceof ObjectShapeError) throw new ManifestError(file.path, err.message);
      throw err;
    }
    for (const key of Object.keys(grouped) as Array<keyof typeof grouped>) (grouped[key] as unknown[]).push(...objects[key]);
  }
  const result = electAnnouncers({ ...grouped, liveSpeakers }, { ignoreExcludeLB: values["ignore-exclude-lb"] ?? false, loadBalancerClass: null });
  for (const error of result.configErrors) {
    // One bad pool invalidates every pool, as in the controller (the speaker keeps its last good pools; offline there are none).
    const what = error.kind === "IPAddressPool" ? "invalid pool configuration, no pool used" : `ignoring ${error.kind} ${error.namespace}/${error.name}`;
    process.stderr.write(`bollard explain announcer: ${what}: ${error.message}\n`);
  }
  const announcements = result.announcements.map(({ namespace, name, ip, node, reason }) =>
    node === null ? { namespace, name, ip, node, reason } : { namespace, name, ip, node },
  );
  const bgpInput: BgpAnnouncementInput = groupBgpObjects(all);
  if (bgpInput.peers.length === 0 && bgpInput.advertisements.length === 0) {
    process.stdout.write(`${JSON.stringify({ announcements })}\n`);
    return 0;
  }
  const bgp = planBgpAnnouncements(bgpInput, { ignoreExcludeLB: values["ignore-exclude-lb"] ?? false, loadBalancerClass: null });
  for (const error of bgp.configErrors) {
    process.stderr.write(`bollard explain announcer: ignoring ${error.kind} ${error.namespace}/${error.name}: ${error.message}\n`);
  }
  const formatCommunity = (n: number) => `${Math.floor(n / 65536)}:${n % 65536}`;
  const bgpAnnouncements = bgp.announcements.map(({ namespace, name, ip, prefix, node, peer, communities, largeCommunities, localPref, advertisements }) => ({
    namespace,
    name,
    ip,
    prefix,
    node,
    peer,
    communities: [...communities.map(formatCommunity), ...largeCommunities.map((c) => `large:${c.join(":")}`)],
    ...(localPref !== undefined ? { localPref } : {}),
    advertisements,
  }));
  process.stdout.write(`${JSON.stringify({ announcements, bgp: { announcements: bgpAnnouncements, notAnnounced: bgp.notAnnounced } })}\n`);
  return 0;
};
