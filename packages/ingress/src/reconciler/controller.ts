import type { KubeConfig } from "@kubernetes/client-node";
import {
  type ApiObject,
  createInformer,
  createWorkQueue,
  type EventRecorder,
  type Informer,
  isStatus,
  kubeRequest,
  type Logger,
  resourcePath,
  resources,
  runLeaderElection,
  typedResource,
} from "@bollard/core";
import { DEFAULT_GLOBALS, type GlobalSettings, readGlobals } from "../annotations/globals.ts";
import type { ConfigMap, EndpointSlice, Ingress, IngressClass, ObjectRef, Secret, Service, Snapshot } from "../model/objects.ts";
import { refKey } from "../model/objects.ts";
import { compileRoutes } from "../router/compile.ts";
import type { Diagnostic, RouteTable } from "../router/table.ts";
import type { IngressMetrics } from "../status/metrics.ts";
import { loadBalancerAddresses, statusUpdates } from "../status/publish.ts";

export interface IngressControllerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  signal: AbortSignal;
  ingressClass: string;
  controllerName: string;
  watchIngressClasses?: readonly string[];
  watchWithoutClass?: boolean;
  /** the annotation prefix read (default nginx.ingress.kubernetes.io) */
  annotationsPrefix?: string | undefined;
  /** an ingress-nginx controller ConfigMap: its keys are the cluster-wide defaults (watched) */
  configMap?: ObjectRef | undefined;
  /** only this namespace's Ingresses, Services, EndpointSlices and Secrets; all when undefined */
  watchNamespace?: string;
  publishService?: ObjectRef;
  defaultCertificate?: ObjectRef;
  /** where the Lease lives, and who we are in it */
  election: { namespace: string; name: string; identity: string };
  events: EventRecorder;
  metrics?: IngressMetrics;
  /** receives every new table (and the snapshot it came from) */
  apply(table: RouteTable, snapshot: Snapshot): void;
  /** changes within this window after a build make one table; a lone change is built at once (default 100 ms) */
  coalesceMs?: number;
}

export interface IngressController {
  /** resolves once the first table is applied */
  ready: Promise<void>;
  isReady(): boolean;
  isLeader(): boolean;
  /** resolves when stopped by the signal (the Lease released) */
  done: Promise<void>;
}

const INGRESS_REF = { kind: "Ingress", apiVersion: "networking.k8s.io/v1" };

/**
 * The control plane: informers → snapshot → compileRoutes → apply (a swap in the data plane).
 * Problems become Warning Events on their Ingress, and `--publish-service`'s addresses are copied into our
 * Ingresses' status — both only by the Lease holder, so replicas do not repeat each other.
 */
export function startIngressController(options: IngressControllerOptions): IngressController {
  const { kubeConfig, logger, signal, watchNamespace } = options;
  const common = { kubeConfig, logger, signal };
  const watched = { ...common, namespace: watchNamespace };
  const ingresses = createInformer({ ...watched, resource: typedResource<Ingress>(resources.ingresses) });
  const classes = createInformer({ ...common, resource: typedResource<IngressClass>(resources.ingressClasses) });
  const services = createInformer({ ...watched, resource: typedResource<Service>(resources.services) });
  const slices = createInformer({ ...watched, resource: typedResource<EndpointSlice>(resources.endpointSlices) });
  // Every type of Secret: TLS pairs, and the htpasswd and CA Secrets that auth annotations name.
  const secrets = createInformer({ ...watched, resource: typedResource<Secret>(resources.secrets) });
  // ConfigMaps that annotations name (custom-headers)
  const configMaps = createInformer({ ...watched, resource: typedResource<ConfigMap>(resources.configMaps) });
  const informers: Informer<ApiObject>[] = [ingresses, classes, services, slices, secrets, configMaps];
  // Objects outside the watched namespace that flags name: one-object informers, nothing wider.
  const defaultCert = options.defaultCertificate;
  const defaultCertSecrets =
    defaultCert && watchNamespace && defaultCert.namespace !== watchNamespace
      ? createInformer({
          ...common,
          resource: typedResource<Secret>(resources.secrets),
          namespace: defaultCert.namespace,
          fieldSelector: `type=kubernetes.io/tls,metadata.name=${defaultCert.name}`,
        })
      : null;
  if (defaultCertSecrets) informers.push(defaultCertSecrets);
  const globalsRef = options.configMap;
  const globalsInformer = globalsRef
    ? createInformer({ ...common, resource: typedResource<ConfigMap>(resources.configMaps), namespace: globalsRef.namespace, fieldSelector: `metadata.name=${globalsRef.name}` })
    : null;
  if (globalsInformer) informers.push(globalsInformer);
  // The same object while the ConfigMap's data is unchanged, so that policies are not read again for nothing.
  let globals: { data: string; settings: GlobalSettings } = { data: "", settings: DEFAULT_GLOBALS };
  const currentGlobals = (): GlobalSettings => {
    if (globalsRef === undefined || globalsInformer === null) return DEFAULT_GLOBALS;
    const cm = globalsInformer.get(globalsRef.namespace, globalsRef.name) as ConfigMap | undefined;
    const data = JSON.stringify(cm?.data ?? null);
    if (data === globals.data) return globals.settings;
    if (cm === undefined) logger.warn({ configMap: refKey(globalsRef) }, "--configmap names no ConfigMap; the defaults apply");
    const { globals: settings, findings } = readGlobals(cm?.data);
    for (const f of findings) logger.warn({ configMap: refKey(globalsRef), key: f.key, value: f.value, verdict: f.verdict }, `ConfigMap key ${f.key}: ${f.message}`);
    globals = { data, settings };
    return settings;
  };
  const publish = options.publishService;
  // Who wrote an Ingress's status is how we tell our addresses from another controller's (metadata.managedFields).
  const fieldManager = `bollard-ingress-${options.ingressClass}`;
  const publishInformer = publish
    ? createInformer({ ...common, resource: typedResource<Service>(resources.services), namespace: publish.namespace, fieldSelector: `metadata.name=${publish.name}` })
    : null;

  let table: RouteTable | null = null;
  let timer: NodeJS.Timeout | null = null;
  let lastBuildAt = Number.NEGATIVE_INFINITY;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });
  let leading = false;
  const reported = new Set<string>();
  let wakeStatus: () => void = () => {};

  const snapshotNow = (): Snapshot => ({
    ingresses: ingresses.list(),
    ingressClasses: classes.list(),
    services: services.list(),
    endpointSlices: slices.list(),
    secrets: [...secrets.list(), ...(defaultCertSecrets?.list() ?? [])],
    configMaps: configMaps.list(),
  });

  function rebuild(): void {
    timer = null;
    if (signal.aborted || !informers.every((i) => i.hasSynced())) return;
    lastBuildAt = performance.now();
    const next = snapshotNow();
    try {
      const compiled = compileRoutes(next, {
        controllerName: options.controllerName,
        ingressClass: options.ingressClass,
        watchIngressClasses: options.watchIngressClasses ?? [],
        watchWithoutClass: options.watchWithoutClass ?? false,
        defaultCertificate: options.defaultCertificate ?? null,
        globals: currentGlobals(),
        ...(options.annotationsPrefix === undefined ? {} : { annotationsPrefix: options.annotationsPrefix }),
      });
      options.apply(compiled, next);
      table = compiled;
      options.metrics?.configurationApplied(true, compiled.diagnostics.length);
      if (compiled.defaultCertificateError !== null) logger.warn({ problem: compiled.defaultCertificateError }, "--default-ssl-certificate is not usable; serving the generated certificate");
      logger.info({ ingresses: compiled.ingresses.length, problems: compiled.diagnostics.length }, "route table applied");
      reportProblems(compiled.diagnostics);
      wakeStatus();
      resolveReady();
    } catch (err) {
      // compileRoutes is total over its input; this guards the last good table against a bug.
      options.metrics?.configurationApplied(false, table?.diagnostics.length ?? 0);
      logger.error({ err }, "building the route table failed; keeping the last good one");
    }
  }

  // A lone change is built at once (on the next turn of the event loop, so the events of one watch chunk go
  // together); changes within the window after a build wait for the window to close, so a burst makes one
  // table rather than hundreds.
  function schedule(): void {
    if (timer !== null || signal.aborted) return;
    const wait = Math.max(0, lastBuildAt + (options.coalesceMs ?? 100) - performance.now());
    timer = setTimeout(rebuild, wait);
  }

  function reportProblems(diagnostics: readonly Diagnostic[]): void {
    if (!leading) return;
    const current = new Set<string>();
    for (const d of diagnostics) {
      const key = `${refKey(d.ingress)}|${d.reason}|${d.field}|${d.message}`;
      current.add(key);
      if (reported.has(key)) continue;
      const uid = (ingresses.get(d.ingress.namespace, d.ingress.name) as Ingress | undefined)?.metadata.uid;
      options.events.record({ ...INGRESS_REF, namespace: d.ingress.namespace, name: d.ingress.name, ...(uid ? { uid } : {}) }, "Warning", d.reason, `${d.field}: ${d.message}`);
    }
    // Forget what was fixed, so that it is reported again if it comes back.
    for (const key of reported) if (!current.has(key)) reported.delete(key);
    for (const key of current) reported.add(key);
  }

  for (const i of informers) i.onChange(schedule);
  publishInformer?.onChange(() => wakeStatus());
  Promise.all(informers.map((i) => i.synced)).then(schedule, () => {});

  /** Writes every Ingress status that differs; throws the last failure so the queue retries with backoff. */
  async function publishOnce(leaderSignal: AbortSignal): Promise<void> {
    if (publish === undefined || publishInformer === null || table === null || !publishInformer.hasSynced()) return;
    const addresses = loadBalancerAddresses(publishInformer.get(publish.namespace, publish.name) as Service | undefined);
    const updates = statusUpdates(ingresses.list(), table.ingresses, addresses, fieldManager);
    let failure: unknown;
    for (const u of updates) {
      const clearing = u.addresses.length === 0;
      try {
        await kubeRequest(kubeConfig, {
          method: "PATCH",
          path: resourcePath(resources.ingresses, { namespace: u.ingress.namespace, name: u.ingress.name, subresource: "status" }),
          query: { fieldManager },
          contentType: "application/merge-patch+json",
          body: {
            ...(u.resourceVersion === null ? {} : { metadata: { resourceVersion: u.resourceVersion } }),
            status: { loadBalancer: { ingress: clearing ? null : u.addresses } },
          },
          signal: leaderSignal,
        });
        logger.info({ ingress: refKey(u.ingress), addresses: u.addresses }, clearing ? "cleared Ingress status" : "published Ingress status");
      } catch (err) {
        if (leaderSignal.aborted) return;
        if (isStatus(err, 404)) continue; // deleted meanwhile: nothing to publish
        failure = err;
        // 409: the Ingress changed since we judged it (maybe another controller wrote it); judge again.
        if (isStatus(err, 409)) logger.debug({ ingress: refKey(u.ingress) }, "Ingress changed while clearing its status; looking again");
        else logger.warn({ err, ingress: refKey(u.ingress) }, "publishing Ingress status failed; will retry");
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** While leading: publishes on every wake, one pass at a time (a wake during a pass runs one more). */
  async function publishStatus(leaderSignal: AbortSignal): Promise<void> {
    if (publish === undefined || publishInformer === null) return;
    const queue = createWorkQueue<"status">({ work: () => publishOnce(leaderSignal), backoff: { initialMs: 500, maxMs: 30_000 }, signal: leaderSignal });
    wakeStatus = () => queue.add("status");
    queue.add("status");
    await new Promise<void>((resolve) => {
      if (leaderSignal.aborted) resolve();
      else leaderSignal.addEventListener("abort", () => resolve(), { once: true });
    });
    wakeStatus = () => {};
    await queue.idle();
  }

  const election = runLeaderElection({
    kubeConfig,
    namespace: options.election.namespace,
    name: options.election.name,
    identity: options.election.identity,
    logger,
    signal,
    onStartedLeading: async (leaderSignal) => {
      leading = true;
      if (table !== null) reportProblems(table.diagnostics);
      try {
        await publishStatus(leaderSignal);
        await new Promise<void>((resolve) => {
          if (leaderSignal.aborted) resolve();
          else leaderSignal.addEventListener("abort", () => resolve(), { once: true });
        });
      } finally {
        leading = false;
        reported.clear();
      }
    },
  });

  signal.addEventListener("abort", () => {
    if (timer !== null) clearTimeout(timer);
    wakeStatus();
  });

  return {
    ready,
    isReady: () => table !== null,
    isLeader: () => election.isLeader(),
    done: election.done.then(() => {
      for (const i of informers) i.stop();
      publishInformer?.stop();
    }),
  };
}
