// The parts of MetalLB's BGP objects the announcement rules read, as plain JSON shapes (informers and YAML).
import type { LabelSelector, ObjectMeta } from "../election/objects.ts";

export interface BGPPeerObject {
  metadata: ObjectMeta;
  spec?: {
    myASN?: number;
    peerASN?: number;
    dynamicASN?: "internal" | "external";
    peerAddress?: string;
    peerPort?: number;
    sourceAddress?: string;
    holdTime?: string;
    keepaliveTime?: string;
    connectTime?: string;
    routerID?: string;
    password?: string;
    passwordSecret?: { name?: string; namespace?: string };
    bfdProfile?: string;
    ebgpMultiHop?: boolean;
    enableGracefulRestart?: boolean;
    interface?: string;
    vrf?: string;
    disableMP?: boolean;
    dualStackAddressFamily?: boolean;
    nodeSelectors?: LabelSelector[];
  };
}

export interface BGPAdvertisementObject {
  metadata: ObjectMeta;
  spec?: {
    aggregationLength?: number;
    aggregationLengthV6?: number;
    localPref?: number;
    communities?: string[];
    ipAddressPools?: string[];
    ipAddressPoolSelectors?: LabelSelector[];
    nodeSelectors?: LabelSelector[];
    peers?: string[];
  };
}

export interface CommunityObject {
  metadata: ObjectMeta;
  spec?: { communities?: { name?: string; value?: string }[] };
}

export interface BFDProfileObject {
  metadata: ObjectMeta;
  spec?: {
    receiveInterval?: number;
    transmitInterval?: number;
    detectMultiplier?: number;
    echoInterval?: number;
    echoMode?: boolean;
    passiveMode?: boolean;
    minimumTtl?: number;
  };
}
