import type { KubeConfig } from "@kubernetes/client-node";
import { createBackoff, sleep } from "../lifecycle/backoff.ts";
import type { Logger } from "../log/logger.ts";
import { isGone, KubeApiError, kubeRequest, kubeWatch } from "./request.ts";
import { type ApiObject, type ResourceType, resourcePath } from "./resources.ts";

export type InformerEvent<T> = { type: "ADDED" | "MODIFIED" | "DELETED" | "RESYNC"; object?: T };

export type InformerOptions<T extends ApiObject = ApiObject> = {
  kubeConfig: KubeConfig;
  /** What to list and watch, e.g. `resources.services`; the informer's objects are its `T`. */
  resource: ResourceType<T>;
  /** Only this namespace (namespaced types); absent: every namespace. */
  namespace?: string | undefined;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  signal: AbortSignal;
  /** Objects per list page (default 500). */
  pageSize?: number;
  /** Backoff bounds for failed lists and watches (default 200 ms → 10 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * What the store keeps of each object as it arrives (listed or watched), e.g. `stripManagedFields`: what a
   * component never reads costs memory for every object of the collection. Must keep `metadata.name`,
   * `namespace` and `resourceVersion`.
   */
  transform?: (object: T) => T;
};

export type Informer<T> = {
  /** The objects as last seen, in no particular order. */
  list(): T[];
  get(namespace: string | undefined, name: string): T | undefined;
  hasSynced(): boolean;
  /** Resolves after the first complete list; rejects with InformerStoppedError if stopped before. */
  synced: Promise<void>;
  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(callback: (event: InformerEvent<T>) => void): () => void;
  stop(): void;
};

export class InformerStoppedError extends Error {
  override name = "InformerStoppedError";
  readonly path: string;
  constructor(path: string) {
    super(`informer for ${path} stopped before its first sync`);
    this.path = path;
  }
}

type ListResponse<T> = { items?: T[]; metadata?: { resourceVersion?: string; continue?: string } };

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * Drops `metadata.managedFields` (server-side apply's field ownership): often the largest part of an object's
 * metadata, read by no component but the ingress's status publisher.
 */
export function stripManagedFields<T extends ApiObject>(object: T): T {
  const metadata = object.metadata as (ApiObject["metadata"] & { managedFields?: unknown }) | undefined;
  if (metadata?.managedFields !== undefined) delete metadata.managedFields;
  return object;
}

function keyOf(object: ApiObject): string {
  return objectKey(object.metadata?.namespace, object.metadata?.name ?? "");
}

/**
 * A list+watch cache of one collection. It lists, then watches from the list's resourceVersion
 * (with bookmarks, so a resumed watch rarely starts from a stale version); when the server says
 * 410 Gone it relists, replaces the store in one step, reports what vanished as DELETED and then
 * emits one RESYNC. Failures are retried with capped exponential backoff; the store keeps serving
 * the last good state meanwhile.
 */
export function createInformer<T extends ApiObject>(options: InformerOptions<T>): Informer<T> {
  const { kubeConfig, logger: parentLogger } = options;
  const path = resourcePath(options.resource, { namespace: options.namespace });
  const logger = parentLogger.child({ informer: path });
  const stopController = new AbortController();
  const signal = AbortSignal.any([options.signal, stopController.signal]);
  const backoff = createBackoff({ initialMs: options.backoff?.initialMs ?? 200, maxMs: options.backoff?.maxMs ?? 10_000 });
  const selectors = { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector };
  const listeners = new Set<(event: InformerEvent<T>) => void>();
  const transform = options.transform ?? ((object: T) => object);

  let store = new Map<string, T>();
  let resourceVersion: string | undefined;
  let hasSynced = false;
  let resolveSynced!: () => void;
  let rejectSynced!: (error: Error) => void;
  const synced = new Promise<void>((resolve, reject) => {
    resolveSynced = resolve;
    rejectSynced = reject;
  });
  synced.catch(() => {}); // callers who never await it must not see an unhandled rejection

  const emit = (event: InformerEvent<T>) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        logger.error({ err: error, event: event.type }, "informer listener threw");
      }
    }
  };

  async function listAll(): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let version = "";
    do {
      const page = await kubeRequest<ListResponse<T>>(kubeConfig, {
        path,
        query: { ...selectors, limit: options.pageSize ?? 500, continue: continueToken },
        signal,
      });
      for (const item of page.items ?? []) items.push(transform(item));
      continueToken = page.metadata?.continue || undefined;
      version = page.metadata?.resourceVersion ?? "";
    } while (continueToken);
    return { items, resourceVersion: version };
  }

  async function relist(): Promise<void> {
    const listed = await listAll();
    const next = new Map<string, T>();
    for (const item of listed.items) next.set(keyOf(item), item);
    const previous = store;
    store = next;
    resourceVersion = listed.resourceVersion;
    const wasSynced = hasSynced;
    hasSynced = true;
    for (const [key, object] of previous) if (!next.has(key)) emit({ type: "DELETED", object });
    for (const [key, object] of next) {
      const before = previous.get(key);
      if (!before) emit({ type: "ADDED", object });
      else if (before.metadata?.resourceVersion !== object.metadata?.resourceVersion) emit({ type: "MODIFIED", object });
    }
    logger.debug({ objects: next.size, resourceVersion }, wasSynced ? "relisted" : "listed");
    if (wasSynced) emit({ type: "RESYNC" });
    else resolveSynced();
  }

  function apply(event: { type: string; object: unknown }): void {
    const object = event.type === "ADDED" || event.type === "MODIFIED" || event.type === "DELETED" ? transform(event.object as T) : (event.object as T);
    switch (event.type) {
      case "ADDED":
      case "MODIFIED":
        store.set(keyOf(object), object);
        resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
        emit({ type: event.type, object });
        return;
      case "DELETED":
        store.delete(keyOf(object));
        resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
        emit({ type: "DELETED", object });
        return;
      case "BOOKMARK":
        resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
        return;
      case "ERROR": {
        const status = event.object as { code?: number; reason?: string; message?: string };
        throw new KubeApiError("GET", path, status.code ?? 500, status.reason, status.message ?? "watch error");
      }
      default:
        logger.warn({ type: event.type }, "ignoring unknown watch event type");
    }
  }

  async function run(): Promise<void> {
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          await relist();
          backoff.reset();
        }
        let events = 0;
        const started = Date.now();
        // Like client-go, a random server-side timeout spreads watch restarts out over time.
        const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
        await kubeWatch(
          kubeConfig,
          {
            path,
            query: { ...selectors, resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
            signal,
            idleTimeoutMs: (timeoutSeconds + 30) * 1000,
          },
          (event) => {
            // Only a watch that delivers something (bookmarks included) proves the server healthy again.
            if (events++ === 0) backoff.reset();
            apply(event);
          },
        );
        // A server that ends watches at once, over and over, must not be hammered.
        if (events === 0 && Date.now() - started < 1000) await sleep(backoff.next(), signal);
      } catch (error) {
        if (signal.aborted) break;
        if (isGone(error)) {
          logger.info({ resourceVersion }, "resourceVersion too old (410 Gone); relisting");
          resourceVersion = undefined;
          continue;
        }
        const delay = backoff.next();
        logger.warn({ err: error, retryInMs: Math.round(delay), attempt: backoff.attempts }, "list/watch failed");
        await sleep(delay, signal);
      }
    }
    if (!hasSynced) rejectSynced(new InformerStoppedError(path));
    logger.debug("informer stopped");
  }

  void run();

  return {
    list: () => [...store.values()],
    get: (namespace, name) => store.get(objectKey(namespace, name)),
    hasSynced: () => hasSynced,
    synced,
    onChange(callback) {
      listeners.add(callback);
      return () => listeners.delete(callback);
    },
    stop: () => stopController.abort(),
  };
}

/** Resolves when every informer has synced (rejects if one is stopped first). */
export async function waitForSync(...informers: Array<Pick<Informer<unknown>, "synced">>): Promise<void> {
  await Promise.all(informers.map((informer) => informer.synced));
}
