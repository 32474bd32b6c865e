export { type Announcement, type ElectionInput, type ElectionOptions, type ElectionResult, electAnnouncers, type L2ConfigError } from "./election/elect.ts";
export type { EndpointSliceObject, IPAddressPoolObject, L2AdvertisementObject, NodeObject, ServiceObject } from "./election/objects.ts";
export { groupObjects, ObjectShapeError } from "./election/snapshot.ts";
export { runSpeaker, type SpeakerOptions, MemberlistSecretError } from "./shell/speaker.ts";
export { DEFAULT_MEMBERSHIP_PORT } from "./membership/membership.ts";
export {
  type BgpAnnouncement,
  type BgpAnnouncementInput,
  type BgpAnnouncementOptions,
  type BgpAnnouncementResult,
  type BgpConfigError,
  type BgpNotAnnounced,
  planBgpAnnouncements,
} from "./bgp/announce.ts";
export type { BGPAdvertisementObject, BGPPeerObject, CommunityObject } from "./bgp/objects.ts";
export { groupBgpObjects } from "./bgp/snapshot.ts";
export { BgpSocketError, bgpSocket, MAX_PASSWORD_BYTES, sessionTtl, setListenerPassword } from "./bgp/tcp-socket.ts";
export { type NodeView, type PeerSession, parseDuration, peerSession, type SecretView } from "./bgp/peers.ts";
export { BgpSessions, routesForNode } from "./bgp/sessions.ts";
