// Objects (from YAML or informers) into the BGP announcement rules' input, by kind.
import type { EndpointSliceObject, IPAddressPoolObject, NodeObject, ServiceObject } from "../election/objects.ts";
import type { BgpAnnouncementInput } from "./announce.ts";
import type { BGPAdvertisementObject, BGPPeerObject, CommunityObject } from "./objects.ts";

export function groupBgpObjects(objects: readonly unknown[]): BgpAnnouncementInput {
  const input = { nodes: [] as NodeObject[], services: [] as ServiceObject[], endpointSlices: [] as EndpointSliceObject[], pools: [] as IPAddressPoolObject[], peers: [] as BGPPeerObject[], advertisements: [] as BGPAdvertisementObject[], communities: [] as CommunityObject[] };
  for (const object of objects) {
    const kind = (object as { kind?: string } | null)?.kind;
    if (kind === "Node") input.nodes.push(object as NodeObject);
    else if (kind === "Service") input.services.push(object as ServiceObject);
    else if (kind === "EndpointSlice") input.endpointSlices.push(object as EndpointSliceObject);
    else if (kind === "IPAddressPool") input.pools.push(object as IPAddressPoolObject);
    else if (kind === "BGPPeer") input.peers.push(object as BGPPeerObject);
    else if (kind === "BGPAdvertisement") input.advertisements.push(object as BGPAdvertisementObject);
    else if (kind === "Community") input.communities.push(object as CommunityObject);
  }
  return input;
}
