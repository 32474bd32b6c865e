// The speaker process: informers feed snapshots, membership says who is alive, the election decides,
// the announcer answers; beside it BGP mode (shell/bgp.ts) announces to routers. The announcer only ever holds the last decided state, so losing the API
// server changes nothing on the wire: the informers keep their last objects and membership runs on
// the last known peers.
import type { KubeConfig } from "@kubernetes/client-node";
import {
  type ComponentContext,
  configurationReport,
  createBackoff,
  createConfigurationStateWriter,
  createEventRecorder,
  createInformer,
  kubeRequest,
  type Logger,
  type Pool,
  type RunningComponent,
  resourcePath,
  resources,
  sleep,
  typedResource,
} from "@bollard/core";
import { type AnnounceOutcome, createAnnouncer, type OwnedAddress } from "../announcer/announcer.ts";
import { createAnnouncedGauge, createAnnouncerMetrics } from "../announcer/metrics.ts";
import { type Announcement, electAnnouncers, type L2ConfigError } from "../election/elect.ts";
import {
  type EndpointSliceObject,
  endpointSliceFields,
  type IPAddressPoolObject,
  type L2AdvertisementObject,
  type NodeObject,
  nodeFields,
  type ServiceObject,
  serviceFields,
} from "../election/objects.ts";
import { startMembership } from "../membership/membership.ts";
import { releaseMemoryWhileIdle } from "../memory/release.ts";
import { createBgpShell } from "./bgp.ts";
import { createL2StatusWriter, type DesiredL2Status, l2StatusNode, orphanedL2Statuses, type ServiceL2Status } from "./l2-status.ts";

export interface SpeakerOptions {
  nodeName: string;
  configNamespace: string;
  memberlistSecret: { namespace: string; name: string };
  bindPort: number;
  /** Only ever answer on these interfaces (null: as the L2Advertisements say). */
  interfaces: string[] | null;
  ignoreExcludeLB: boolean;
  loadBalancerClass: string | null;
  garpRefreshMs: number;
}

/** The memberlist Secret exists but has no usable `secretkey`. */
export class MemberlistSecretError extends Error {
  override name = "MemberlistSecretError";
}

const MEMBERLIST_SECRET_KEY = "secretkey";

/** Reads the membership key, retrying (the Secret may be created after the DaemonSet). */
async function readMemberlistKey(kubeConfig: KubeConfig, options: SpeakerOptions, context: ComponentContext): Promise<Buffer> {
  const { namespace, name } = options.memberlistSecret;
  const backoff = createBackoff({ initialMs: 500, maxMs: 10_000 });
  for (;;) {
    try {
      const secret = await kubeRequest<{ data?: Record<string, string> }>(kubeConfig, {
        path: resourcePath(resources.secrets, { namespace, name }),
        signal: context.signal,
      });
      const encoded = secret.data?.[MEMBERLIST_SECRET_KEY];
      if (encoded === undefined) throw new MemberlistSecretError(`Secret ${namespace}/${name} has no data.${MEMBERLIST_SECRET_KEY}`);
      return Buffer.from(encoded, "base64");
    } catch (err) {
      if (context.signal.aborted) throw err;
      const delay = backoff.next();
      context.logger.warn({ err, secret: `${namespace}/${name}`, retryInMs: Math.round(delay) }, "cannot read the memberlist Secret yet");
      await sleep(delay, context.signal);
    }
  }
}

function internalAddress(node: NodeObject): string | undefined {
  const addresses = node.status?.addresses ?? [];
  return (addresses.find((a) => a.type === "InternalIP") ?? addresses.find((a) => a.type === "ExternalIP"))?.address;
}

/** Restricts an advertisement's interfaces to the --interfaces flag, when given. */
function restrictInterfaces(fromAdvertisement: "all" | string[], flag: string[] | null): "all" | string[] {
  if (flag === null) return fromAdvertisement;
  if (fromAdvertisement === "all") return flag;
  return fromAdvertisement.filter((name) => flag.includes(name));
}

/**
 * Test hook, off unless BOLLARD_TEST_STALL_SIGNAL names a signal: on that signal this process's event
 * loop is blocked for 2 s, as a long GC pause or a starved CPU share would block it. The lab tests use it
 * to show that ARP/NDP answers and membership acks (the addon's liveness thread) go on meanwhile.
 */
function installStallHook(log: Logger, signal: AbortSignal): void {
  const name = process.env.BOLLARD_TEST_STALL_SIGNAL;
  if (name === undefined || name === "") return;
  const stall = () => {
    log.warn({ ms: 2000 }, "test hook: blocking the event loop");
    const until = Date.now() + 2000;
    while (Date.now() < until) {}
  };
  process.on(name as NodeJS.Signals, stall);
  signal.addEventListener("abort", () => process.off(name as NodeJS.Signals, stall), { once: true });
}

/** Starts the speaker; ready once its informers have synced, `done` once it has left after `context.signal`. */
export function runSpeaker(options: SpeakerOptions, context: ComponentContext): RunningComponent {
  let ready = false;
  const done = serve(options, context, (value) => {
    ready = value;
  });
  return { isReady: () => ready, done };
}

async function serve(options: SpeakerOptions, context: ComponentContext, setReady: (ready: boolean) => void): Promise<void> {
  const { nodeName } = options;
  const { kubeConfig, registry, signal } = context;
  const log = context.logger.child({ node: nodeName });
  installStallHook(log, signal);
  const announcerMetrics = createAnnouncerMetrics(registry);
  const announcedGauge = createAnnouncedGauge(registry);
  const key = await readMemberlistKey(kubeConfig, options, context);
  const common = { kubeConfig, logger: log, signal };
  const inConfig = { ...common, namespace: options.configNamespace };
  // The cluster-wide collections are the speaker's memory: of each object only what the election and BGP read.
  const services = createInformer({ ...common, resource: typedResource<ServiceObject>(resources.services), transform: serviceFields });
  const slices = createInformer({ ...common, resource: typedResource<EndpointSliceObject>(resources.endpointSlices), transform: endpointSliceFields });
  const nodes = createInformer({ ...common, resource: typedResource<NodeObject>(resources.nodes), transform: nodeFields });
  const pools = createInformer({ ...inConfig, resource: typedResource<IPAddressPoolObject>(resources.ipAddressPools) });
  const advertisements = createInformer({ ...inConfig, resource: typedResource<L2AdvertisementObject>(resources.l2Advertisements) });
  // Every node's, so that the announcer of a Service can remove what a dead node left behind.
  const statuses = createInformer({ ...inConfig, resource: typedResource<ServiceL2Status>(resources.serviceL2Statuses) });
  const events = createEventRecorder({ kubeConfig, component: "bollard.io/speaker", host: nodeName, logger: log });
  // BGP mode beside layer 2, as in MetalLB: a pool announced by both kinds of advertisement is announced both ways.
  const bgp = createBgpShell({
    kubeConfig,
    nodeName,
    configNamespace: options.configNamespace,
    ignoreExcludeLB: options.ignoreExcludeLB,
    loadBalancerClass: options.loadBalancerClass,
    logger: log,
    signal,
    registry,
    events,
    nodes,
    services,
    slices,
    pools,
    schedule: () => schedule(),
  });
  const inputs = [services, slices, nodes, pools, advertisements, statuses, ...bgp.inputs];
  const statusWriter = createL2StatusWriter({ kubeConfig, namespace: options.configNamespace, node: nodeName, existing: statuses, logger: log, signal });
  // MetalLB v0.16's ConfigurationState `speaker-<node>`: whether the pools and L2Advertisements this speaker reads are valid.
  const configurationState = createConfigurationStateWriter({
    kubeConfig,
    namespace: options.configNamespace,
    name: `speaker-${nodeName}`,
    component: "speaker",
    nodeName,
    logger: log,
    signal,
  });
  const announcer = createAnnouncer({ logger: log, metrics: announcerMetrics, garpRefreshMs: options.garpRefreshMs });

  // Changes are coalesced: one reconcile for every change seen until it runs. A reconcile plans every Service,
  // so under churn (1,000 Services created, their status objects written by every node, each a watch event) one
  // per event kept the event loop busy for seconds — and BFD and the membership heartbeats run on that loop.
  // The next reconcile waits as long as the last one took, so reconciling takes at most about half the loop.
  let scheduled = false;
  let lastReconcileMs = 0;
  let lastReconcileEnd = 0;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    const wait = Math.max(0, lastReconcileEnd + lastReconcileMs - performance.now());
    const run = () => {
      scheduled = false;
      const start = performance.now();
      reconcile();
      lastReconcileEnd = performance.now();
      lastReconcileMs = lastReconcileEnd - start;
    };
    if (wait < 1) setImmediate(run);
    else setTimeout(run, wait).unref();
  };
  let previousLive: ReadonlySet<string> = new Set<string>();
  // uids of ServiceL2Status objects whose node was dead to this one when it looked (see l2-status.ts).
  const leftBehind = new Set<string>();
  const noteLeftBehind = (gone: ReadonlySet<string>) => {
    for (const object of [...statuses.list(), ...bgp.statusObjects()]) {
      const node = l2StatusNode(object);
      if (node !== undefined && gone.has(node) && object.metadata.uid !== undefined) leftBehind.add(object.metadata.uid);
    }
  };
  const membership = await startMembership({
    nodeName,
    key,
    port: options.bindPort,
    logger: log,
    registry,
    onChange(live, change) {
      const joined = change.joined.filter((n) => n !== nodeName);
      // Peers counted at the moment this node converges are no rejoin: it owns nothing yet.
      const wasCounted = previousLive.has(nodeName);
      if (live.has(nodeName)) {
        // On converging, every node not live is gone; afterwards, those that just left.
        const gone = wasCounted ? change.left : [...statuses.list(), ...bgp.statusObjects()].map(l2StatusNode);
        noteLeftBehind(new Set(gone.filter((n): n is string => n !== undefined && n !== nodeName && !live.has(n))));
      }
      // (The membership never changes a set it handed over.)
      previousLive = live;
      schedule();
      // After a partition heals both sides announced; whoever keeps an address re-asserts it.
      if (joined.length > 0 && wasCounted) setImmediate(() => announcer.reannounce());
    },
  });

  const updatePeers = () => {
    const peers = new Map<string, string>();
    for (const node of nodes.list()) {
      const address = internalAddress(node);
      if (address !== undefined) peers.set(node.metadata.name, address);
    }
    membership.setPeers(peers);
  };
  // Peers are first set once every informer has synced: the join grace and the view's convergence
  // count from a complete Node list, and by then the ServiceL2Status objects of dead nodes are known.
  nodes.onChange(() => {
    if (inputs.every((i) => i.hasSynced())) updatePeers();
  });
  for (const i of inputs) i.onChange(schedule);

  let announcedHere = new Map<string, Announcement[]>();
  let reportedConfigErrors = new Set<string>();
  let reportedFailures = new Set<string>();
  /** The last valid pool configuration, which serves while the current one is invalid (as in the controller). */
  let lastGoodPools: readonly Pool[] = [];

  function reconcile(): void {
    if (signal.aborted || !inputs.every((i) => i.hasSynced())) return;
    const result = electAnnouncers(
      {
        nodes: nodes.list(),
        liveSpeakers: membership.live(),
        services: services.list(),
        endpointSlices: slices.list(),
        pools: pools.list(),
        advertisements: advertisements.list(),
        lastGoodPools,
      },
      { ignoreExcludeLB: options.ignoreExcludeLB, loadBalancerClass: options.loadBalancerClass },
    );
    if (result.pools !== null) lastGoodPools = result.pools;
    reportConfigErrors(result.configErrors);
    const bgpProblems = bgp.reconcile({ live: membership.live().has(nodeName) ? membership.live() : null, leftBehind });
    configurationState.report(
      configurationReport("configReconcilerValid", [
        ...new Set([...result.configErrors.map((e) => `${e.kind} ${e.namespace}/${e.name}: ${e.message}`), ...bgpProblems]),
      ]),
    );
    // Until its membership view has converged this node is no candidate, so it owns nothing; it also
    // leaves the API alone, as it cannot yet tell its own objects from a previous life from current ones.
    const converged = membership.live().has(nodeName);
    const mine = result.announcements.filter((a) => a.node === nodeName);
    const byIp = new Map<string, Announcement[]>();
    for (const a of mine) byIp.set(a.ip, [...(byIp.get(a.ip) ?? []), a]);
    const owned: OwnedAddress[] = [...byIp].map(([ip, list]) => {
      const interfaces = list.some((a) => a.interfaces === "all") ? "all" : [...new Set(list.flatMap((a) => a.interfaces as string[]))];
      return { ip, service: list.map((a) => `${a.namespace}/${a.name}`).join(","), interfaces: restrictInterfaces(interfaces, options.interfaces) };
    });
    const outcomes = announcer.setOwned(owned);
    const outcomeByIp = new Map(outcomes.map((o) => [o.ip, o]));

    const byService = new Map<string, Announcement[]>();
    for (const a of mine) byService.set(`${a.namespace}/${a.name}`, [...(byService.get(`${a.namespace}/${a.name}`) ?? []), a]);
    announcedGauge.reset();
    const desired: DesiredL2Status[] = [];
    const failures = new Set<string>();
    for (const [serviceKey, list] of byService) {
      const [first] = list as [Announcement];
      const serviceObject = services.get(first.namespace, first.name);
      const involved = { kind: "Service", apiVersion: "v1", namespace: first.namespace, name: first.name, uid: (serviceObject?.metadata as { uid?: string } | undefined)?.uid };
      const interfaces = new Set<string>();
      for (const a of list) {
        const outcome = outcomeByIp.get(a.ip) as AnnounceOutcome | undefined;
        if (outcome === undefined || outcome.interfaces.length === 0) {
          const failure = `${serviceKey}/${a.ip}`;
          failures.add(failure);
          if (!reportedFailures.has(failure)) {
            const why = (outcome?.verdicts ?? []).map((v) => (v.eligible ? v.name : `${v.name}: ${v.reason}`)).join("; ") || "no eligible interface";
            events.record(involved, "Warning", "announceFailed", `cannot announce ${a.ip} from node "${nodeName}" with protocol "layer2": ${why}`);
            log.warn({ service: serviceKey, ip: a.ip, why }, "announce failed");
          }
          continue;
        }
        for (const name of outcome.interfaces) interfaces.add(name);
        announcedGauge.set({ service: serviceKey, ip: a.ip, node: nodeName }, 1);
      }
      if (interfaces.size === 0) continue;
      desired.push({ serviceNamespace: first.namespace, serviceName: first.name, interfaces: [...interfaces].sort() });
      if (!announcedHere.has(serviceKey)) {
        events.record(involved, "Normal", "nodeAssigned", `announcing from node "${nodeName}" with protocol "layer2"`);
      }
    }
    reportedFailures = failures;
    announcedHere = byService;
    if (!converged) return;
    const current = statuses.list();
    const present = new Set([...current, ...bgp.statusObjects()].map((o) => o.metadata.uid));
    for (const uid of leftBehind) if (!present.has(uid)) leftBehind.delete(uid);
    const announced = new Set(desired.map((d) => `${d.serviceNamespace}/${d.serviceName}`));
    statusWriter.set(desired, orphanedL2Statuses(current, { self: nodeName, live: membership.live(), announced, leftBehind }));
  }

  function reportConfigErrors(errors: L2ConfigError[]): void {
    const now = new Set(errors.map((e) => `${e.kind}/${e.namespace}/${e.name}: ${e.message}`));
    for (const e of errors) {
      const id = `${e.kind}/${e.namespace}/${e.name}: ${e.message}`;
      if (!reportedConfigErrors.has(id)) {
        const what = e.kind === "IPAddressPool" ? "invalid pool configuration, keeping the last good pools" : "ignoring invalid configuration object";
        log.error({ kind: e.kind, object: `${e.namespace}/${e.name}`, reason: e.message }, what);
      }
    }
    reportedConfigErrors = now;
  }

  // Membership listens while the informers sync; peers are known by the time the first election runs.
  Promise.all(inputs.map((i) => i.synced)).then(
    () => {
      updatePeers();
      setReady(true);
      log.info("informers synced");
      schedule();
      // The lists (megabytes of JSON, through TLS and the HTTP parser), the first reconciles and every burst after
      // leave garbage in V8's heap and free pages in malloc's arena: given back within seconds (README "Memory").
      releaseMemoryWhileIdle(signal);
    },
    () => {},
  );

  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
  log.info("stopping: leaving the membership and giving addresses up");
  setReady(false);
  await bgp.stop();
  await membership.close();
  announcer.close();
  announcedGauge.reset();
  await statusWriter.clear(2000);
  await events.flush();
  for (const i of inputs) i.stop();
}
