// The speaker's BGP mode: informers on MetalLB's BGP objects, the announcement rules (pure) deciding what this
// node announces to whom, one BGP session per BGPPeer selecting the node (with BFD when the peer names a
// BFDProfile), ServiceBGPStatus per announced Service, Events and metrics. Every node announces on its own:
// there is no election, the routers spread traffic over the nodes.
//
// Bad configuration never withdraws anything: an invalid object keeps its last valid version in effect
// (planWithLastGood, kept incrementally by IncrementalBgpPlanner: a change replans only the Services it
// affects), an invalid BGPPeer keeps its last valid session, and the problem is logged, recorded as
// a Warning Event on the object and reported in the ConfigurationState.
import { isIP } from "node:net";
import type { Route } from "@bollard/bgp";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  createInformer,
  type EventRecorder,
  type Informer,
  isStatus,
  kubeRequest,
  type Logger,
  parseLabelSelector,
  resourcePath,
  resources,
  selectorMatches,
  typedResource,
} from "@bollard/core";
import type { Registry } from "prom-client";
import { IncrementalBgpPlanner } from "../bgp/incremental.ts";
import { createBgpMetrics } from "../bgp/metrics.ts";
import type { BFDProfileObject, BGPAdvertisementObject, BGPPeerObject, CommunityObject } from "../bgp/objects.ts";
import { type NodeView, type PeerSession, peerSession, type SecretView } from "../bgp/peers.ts";
import { BgpSessions, routesForNode } from "../bgp/sessions.ts";
import type { EndpointSliceObject, IPAddressPoolObject, NodeObject, ServiceObject } from "../election/objects.ts";
import { createBgpStatusWriter, type DesiredBgpStatus, orphanedBgpStatuses, type ServiceL2Status } from "./l2-status.ts";

/** BGPPeer is read at v1beta2, its stored version; v1beta1 objects are the same objects (conversion None). */
export const BGP_PEER_VERSION = resources.bgpPeers.version;
const SECRET_REFRESH_MS = 60_000;

export interface BgpShellOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  configNamespace: string;
  ignoreExcludeLB: boolean;
  loadBalancerClass: string | null;
  logger: Logger;
  signal: AbortSignal;
  registry: Registry;
  events: EventRecorder;
  nodes: Informer<NodeObject>;
  services: Informer<ServiceObject>;
  slices: Informer<EndpointSliceObject>;
  pools: Informer<IPAddressPoolObject>;
  /** Asks for a reconcile (a Secret arrived). */
  schedule: () => void;
}

export interface BgpShell {
  /** The informers BGP adds; the speaker waits for them before its first reconcile. */
  inputs: Informer<unknown>[];
  /**
   * Brings sessions, routes and ServiceBGPStatus to the current objects; returns configuration problems. `gone`:
   * who is alive in the membership (null until this node has converged) and the uids of status objects that
   * existed when their node was counted dead — other nodes' ServiceBGPStatus objects are removed by
   * `orphanedBgpStatuses`.
   */
  reconcile(gone?: { live: ReadonlySet<string> | null; leftBehind: ReadonlySet<string> }): string[];
  /** Every node's ServiceBGPStatus objects, as the informer has them. */
  statusObjects(): ServiceL2Status[];
  /** Stops every session: peers that agreed to graceful restart keep the routes until the speaker is back. */
  stop(): Promise<void>;
}

type SecretEntry = { type?: string; data: Record<string, string> } | { error: string } | "pending";

/**
 * The routes a session can carry: those of the families it offers (an IPv4 peer gets IPv4 prefixes unless
 * dualStackAddressFamily). A prefix of the other family than the connection's needs a next hop of its own
 * family: the node's address of that family, as MetalLB announces it.
 */
function routesFor(routes: Route[], session: PeerSession, node: NodeView): Route[] {
  const families = new Set((session.options.families ?? []).map((f) => (f.afi === 1 ? 4 : 6)));
  const connection = isIP(session.options.peerAddress);
  return routes.flatMap((route) => {
    const family = route.prefix.includes(":") ? 6 : 4;
    if (!families.has(family)) return [];
    if (family === connection) return [route];
    const nextHop = node.addresses.find((a) => isIP(a) === family);
    return nextHop === undefined ? [] : [{ ...route, nextHop }];
  });
}

export function createBgpShell(o: BgpShellOptions): BgpShell {
  const ns = o.configNamespace;
  const log = o.logger.child({ component: "bgp" });
  const inConfig = { kubeConfig: o.kubeConfig, logger: log, signal: o.signal, namespace: ns };
  const peers = createInformer({ ...inConfig, resource: typedResource<BGPPeerObject>(resources.bgpPeers) });
  const advertisements = createInformer({ ...inConfig, resource: typedResource<BGPAdvertisementObject>(resources.bgpAdvertisements) });
  const communities = createInformer({ ...inConfig, resource: typedResource<CommunityObject>(resources.communities) });
  const bfdProfiles = createInformer({ ...inConfig, resource: typedResource<BFDProfileObject>(resources.bfdProfiles) });
  const statuses = createInformer({ ...inConfig, resource: typedResource<ServiceL2Status>(resources.serviceBGPStatuses) });
  const statusWriter = createBgpStatusWriter({ kubeConfig: o.kubeConfig, namespace: ns, node: o.nodeName, existing: statuses, logger: log, signal: o.signal });

  const peerObject = (name: string) => peers.get(ns, name);
  const involved = (peer: BGPPeerObject) => ({
    kind: "BGPPeer",
    apiVersion: `metallb.io/${BGP_PEER_VERSION}`,
    namespace: ns,
    name: peer.metadata.name,
    ...((peer.metadata as { uid?: string }).uid ? { uid: (peer.metadata as { uid?: string }).uid as string } : {}),
  });
  const addressOf = new Map<string, string>();
  const sessions = new BgpSessions({
    onState(peer, { from, to }) {
      const address = addressOf.get(peer) ?? "?";
      const object = peerObject(peer);
      if (to === "Established") {
        metrics.sessionUp.set({ peer: address }, 1);
        log.info({ peer, address }, "BGP session established");
        if (object) o.events.record(involved(object), "Normal", "sessionUp", `BGP session from node "${o.nodeName}" to ${address} established`);
      } else if (from === "Established") {
        metrics.sessionUp.set({ peer: address }, 0);
        log.warn({ peer, address, state: to }, "BGP session down");
        if (object) o.events.record(involved(object), "Warning", "sessionDown", `BGP session from node "${o.nodeName}" to ${address} went down`);
      }
    },
    onUpdatesSent(peer, count) {
      metrics.updatesSent.inc({ peer: addressOf.get(peer) ?? "?" }, count);
    },
    onBfdState(peer, { from, to, diagnostic, peerRestarted }) {
      const address = addressOf.get(peer) ?? "?";
      metrics.bfdSessionUp.set({ peer: address }, to === "Up" ? 1 : 0);
      if (from === "Up" && to !== "Up" && peerRestarted) {
        log.info({ peer, address }, "the peer re-created its BFD session; the BGP session stays");
      } else if (from === "Up" && to !== "Up") {
        metrics.bfdSessionDownEvents.inc({ peer: address });
        log.warn({ peer, address, state: to, diagnostic }, "BFD session down: resetting the BGP session");
        const object = peerObject(peer);
        if (object) o.events.record(involved(object), "Warning", "bfdSessionDown", `BFD session from node "${o.nodeName}" to ${address} went ${to} (diagnostic ${diagnostic}); the BGP session is reset`);
      } else {
        log.info({ peer, address, from, to }, to === "Up" ? "BFD session up" : "BFD session state");
      }
    },
    onBfdError(peer, err) {
      log.error({ err, peer }, "cannot start the BFD session");
      const object = peerObject(peer);
      if (object) o.events.record(involved(object), "Warning", "bfdFailed", `cannot start BFD from node "${o.nodeName}": ${err.message}`);
    },
  });
  const metrics = createBgpMetrics(o.registry, () => {
    const out = new Map<string, { advertised: number; pending: number }>();
    for (const [peer, s] of sessions.status()) out.set(addressOf.get(peer) ?? peer, { advertised: s.advertised, pending: s.pending });
    return out;
  });

  // passwordSecret: read one Secret at a time by name (RBAC: get on Secrets in the config namespace, no list
  // or watch), again every minute so a rotated password takes effect.
  const secrets = new Map<string, SecretEntry>();
  const fetchSecret = async (key: string) => {
    secrets.set(key, secrets.get(key) ?? "pending");
    const [namespace, name] = key.split("/") as [string, string];
    try {
      const secret = await kubeRequest<{ type?: string; data?: Record<string, string> }>(o.kubeConfig, {
        path: resourcePath(resources.secrets, { namespace, name }),
        signal: o.signal,
      });
      const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
      secrets.set(key, { ...(secret.type ? { type: secret.type } : {}), data });
    } catch (err) {
      if (o.signal.aborted) return;
      const previous = secrets.get(key);
      if (isStatus(err, 404)) secrets.set(key, { error: `spec.passwordSecret: Secret ${key} not found` });
      else if (isStatus(err, 403)) {
        secrets.set(key, { error: `spec.passwordSecret: the speaker may not read Secret ${key}; list its name in the chart value speaker.bgpPasswordSecrets` });
      } else {
        // The API server is away: a password read before stays in use.
        log.warn({ err, secret: key }, "cannot read a BGPPeer's passwordSecret");
        if (previous === "pending" || previous === undefined) secrets.set(key, { error: `spec.passwordSecret: cannot read Secret ${key}: ${(err as Error).message}` });
      }
    }
    o.schedule();
  };
  const refresh = setInterval(() => {
    for (const key of secrets.keys()) void fetchSecret(key);
  }, SECRET_REFRESH_MS);
  refresh.unref();
  const secretView = (): SecretView => {
    const view = new Map<string, { type?: string; data: Record<string, string> }>();
    for (const [key, entry] of secrets) if (typeof entry === "object" && "data" in entry) view.set(key, entry);
    return view;
  };

  const planner = new IncrementalBgpPlanner({ ignoreExcludeLB: o.ignoreExcludeLB, loadBalancerClass: o.loadBalancerClass });
  const lastGoodSessions = new Map<string, PeerSession>();
  let reported = new Set<string>();
  let announcedServices = new Set<string>();
  let updating: Promise<void> = Promise.resolve();

  const report = (problems: { kind: string; apiVersion: string; name: string; message: string; keeping: boolean }[]) => {
    const now = new Set<string>();
    for (const p of problems) {
      const id = `${p.kind}/${p.name}: ${p.message}`;
      now.add(id);
      if (reported.has(id)) continue;
      const what = p.keeping ? "invalid configuration, keeping its last valid version" : "invalid configuration, ignored";
      log.error({ kind: p.kind, object: `${ns}/${p.name}`, reason: p.message }, what);
      o.events.record({ kind: p.kind, apiVersion: p.apiVersion, namespace: ns, name: p.name }, "Warning", "invalidConfiguration", `${p.message} (${p.keeping ? "the last valid version stays in effect" : "ignored"})`);
    }
    reported = now;
  };

  function reconcile(gone?: { live: ReadonlySet<string> | null; leftBehind: ReadonlySet<string> }): string[] {
    const planned = planner.plan({
      nodes: o.nodes.list(),
      services: o.services.list(),
      endpointSlices: o.slices.list(),
      pools: o.pools.list(),
      peers: peers.list(),
      advertisements: advertisements.list(),
      communities: communities.list(),
    });
    if (planner.stats.full !== null) log.debug({ reason: planner.stats.full, services: planner.stats.services }, "BGP plan recomputed in full");
    const kept = new Set(planned.kept);
    // Pool problems are the L2 side's and the controller's to report; BGP only keeps the last valid pools.
    const problems = planned.result.configErrors.filter((e) => e.kind !== "IPAddressPool").map((e) => ({
      kind: e.kind,
      apiVersion: e.kind === "BGPPeer" ? `metallb.io/${BGP_PEER_VERSION}` : "metallb.io/v1beta1",
      name: e.name,
      message: e.message,
      keeping: kept.has(`${e.kind}/${e.namespace}/${e.name}`),
    }));

    const self = o.nodes.get(undefined, o.nodeName);
    const desired = new Map<string, { session: PeerSession; routes: ReturnType<typeof routesForNode> extends Map<string, infer R> ? R : never }>();
    const routes = routesForNode(planned.result.announcements, o.nodeName);
    if (self) {
      const view: NodeView = { name: o.nodeName, labels: self.metadata.labels ?? {}, addresses: (self.status?.addresses ?? []).map((a) => a.address) };
      for (const peer of planned.effective.peers) {
        const selectors = (peer.spec?.nodeSelectors ?? []).flatMap((raw) => {
          const parsed = parseLabelSelector(raw);
          return "selector" in parsed ? [parsed.selector] : [];
        });
        if (selectors.length > 0 && !selectors.some((s) => selectorMatches(s, view.labels))) continue;
        const name = peer.metadata.name;
        const secretName = peer.spec?.passwordSecret?.name;
        if (secretName && !peer.spec?.password) {
          const key = `${peer.spec?.passwordSecret?.namespace || ns}/${secretName}`;
          if (key.startsWith(`${ns}/`) && !secrets.has(key)) void fetchSecret(key);
          if (secrets.get(key) === "pending") continue; // decided once the Secret is read
        }
        let session: PeerSession | { error: string } = peerSession(peer, view, secretView(), ns, bfdProfiles.list());
        const secretKey = secretName && !peer.spec?.password ? `${peer.spec?.passwordSecret?.namespace || ns}/${secretName}` : undefined;
        const secretEntry = secretKey === undefined ? undefined : secrets.get(secretKey);
        if ("error" in session && secretEntry !== undefined && typeof secretEntry === "object" && "error" in secretEntry) session = { error: secretEntry.error };
        if ("error" in session) {
          const previous = lastGoodSessions.get(name);
          problems.push({ kind: "BGPPeer", apiVersion: `metallb.io/${BGP_PEER_VERSION}`, name, message: session.error, keeping: previous !== undefined });
          if (!previous) continue;
          session = previous;
        } else {
          lastGoodSessions.set(name, session);
        }
        if (session.options.gracefulRestart) {
          // Every session this process opens may follow one of an earlier speaker process on this node: say so
          // (the R bit, with forwarding state kept), so a helper that kept our routes waits for our End-of-RIB.
          session = { ...session, options: { ...session.options, gracefulRestart: { ...session.options.gracefulRestart, restarting: true } } };
        }
        addressOf.set(name, session.options.peerAddress);
        desired.set(name, { session, routes: routesFor(routes.get(name) ?? [], session, view) });
      }
    }
    for (const name of lastGoodSessions.keys()) if (!peers.get(ns, name)) lastGoodSessions.delete(name);
    report(problems);
    updating = updating.then(() => sessions.update(desired)).catch((err) => log.error({ err }, "updating BGP sessions failed"));

    // ServiceBGPStatus: the peers this node is configured to announce each Service to (not whether a session is up).
    const byService = new Map<string, DesiredBgpStatus>();
    for (const a of planned.result.announcements) {
      if (a.node !== o.nodeName || !desired.has(a.peer)) continue;
      const key = `${a.namespace}/${a.name}`;
      const entry = byService.get(key) ?? { serviceNamespace: a.namespace, serviceName: a.name, peers: [] };
      if (!entry.peers.includes(a.peer)) entry.peers.push(a.peer);
      byService.set(key, entry);
    }
    for (const entry of byService.values()) entry.peers.sort();
    const nodeNames = new Set(o.nodes.list().map((n) => n.metadata.name));
    statusWriter.set([...byService.values()], orphanedBgpStatuses(statuses.list(), { self: o.nodeName, nodes: nodeNames, live: gone?.live ?? null, leftBehind: gone?.leftBehind ?? new Set() }));
    for (const [key, entry] of byService) {
      if (announcedServices.has(key)) continue;
      const service = o.services.get(entry.serviceNamespace, entry.serviceName);
      const uid = (service?.metadata as { uid?: string } | undefined)?.uid;
      o.events.record(
        { kind: "Service", apiVersion: "v1", namespace: entry.serviceNamespace, name: entry.serviceName, ...(uid ? { uid } : {}) },
        "Normal",
        "nodeAssigned",
        `announcing from node "${o.nodeName}" with protocol "bgp"`,
      );
    }
    announcedServices = new Set(byService.keys());
    return problems.map((p) => `${p.kind} ${ns}/${p.name}: ${p.message}`);
  }

  return {
    inputs: [peers, advertisements, communities, bfdProfiles, statuses] as Informer<unknown>[],
    reconcile,
    statusObjects: () => statuses.list(),
    async stop() {
      clearInterval(refresh);
      await updating;
      await sessions.stop({ gracefulRestart: true });
      await statusWriter.clear(2000);
      for (const i of [peers, advertisements, communities, bfdProfiles, statuses]) i.stop();
    },
  };
}
