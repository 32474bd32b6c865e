// Numbers from the BGP RFCs and IANA's registries, named once.

export const MARKER_LENGTH = 16;
export const HEADER_LENGTH = 19;
/** RFC 4271 §4.1; RFC 8654's extended messages are not negotiated. */
export const MAX_MESSAGE_LENGTH = 4096;
export const BGP_VERSION = 4;
/** RFC 6793: the 2-octet My Autonomous System of a speaker whose AS does not fit in 2 octets. */
export const AS_TRANS = 23456;

export const MessageType = { open: 1, update: 2, notification: 3, keepalive: 4, routeRefresh: 5 } as const;

export const Afi = { ipv4: 1, ipv6: 2 } as const;
export const Safi = { unicast: 1 } as const;

/** RFC 5492 optional parameter type carrying capabilities. */
export const OPTIONAL_PARAMETER_CAPABILITIES = 2;

export const CapabilityCode = {
  multiprotocol: 1, // RFC 4760
  routeRefresh: 2, // RFC 2918
  gracefulRestart: 64, // RFC 4724
  fourOctetAs: 65, // RFC 6793
} as const;

export const AttributeCode = {
  origin: 1,
  asPath: 2,
  nextHop: 3,
  med: 4,
  localPref: 5,
  atomicAggregate: 6,
  aggregator: 7,
  communities: 8, // RFC 1997
  mpReach: 14, // RFC 4760
  mpUnreach: 15, // RFC 4760
  as4Path: 17, // RFC 6793
  as4Aggregator: 18, // RFC 6793
  largeCommunities: 32, // RFC 8092
} as const;

export const AttributeFlag = { optional: 0x80, transitive: 0x40, partial: 0x20, extendedLength: 0x10 } as const;

export const Origin = { igp: 0, egp: 1, incomplete: 2 } as const;

export const AsPathSegmentType = { set: 1, sequence: 2, confedSequence: 3, confedSet: 4 } as const;

/** NOTIFICATION error codes and subcodes: RFC 4271 §4.5, RFC 4486 (Cease), RFC 7313 (ROUTE-REFRESH). */
export const ErrorCode = {
  header: 1,
  open: 2,
  update: 3,
  holdTimerExpired: 4,
  fsm: 5,
  cease: 6,
  routeRefresh: 7,
} as const;

export const HeaderError = { connectionNotSynchronized: 1, badMessageLength: 2, badMessageType: 3 } as const;

export const OpenError = {
  unsupportedVersionNumber: 1,
  badPeerAs: 2,
  badBgpIdentifier: 3,
  unsupportedOptionalParameter: 4,
  unacceptableHoldTime: 6,
  unsupportedCapability: 7,
} as const;

export const UpdateError = {
  malformedAttributeList: 1,
  unrecognizedWellKnownAttribute: 2,
  missingWellKnownAttribute: 3,
  attributeFlagsError: 4,
  attributeLengthError: 5,
  invalidOrigin: 6,
  invalidNextHop: 8,
  optionalAttributeError: 9,
  invalidNetworkField: 10,
  malformedAsPath: 11,
} as const;

export const CeaseError = {
  maximumPrefixes: 1,
  administrativeShutdown: 2,
  peerDeconfigured: 3,
  administrativeReset: 4,
  connectionRejected: 5,
  otherConfigurationChange: 6,
  connectionCollisionResolution: 7,
  outOfResources: 8,
} as const;

export const RouteRefreshError = { invalidMessageLength: 1 } as const;
