// Kubernetes objects (as `@bollard/core` reads them from manifests) → the route compiler's Snapshot.
import { ManifestError } from "@bollard/core";
import { emptySnapshot, type Snapshot } from "./objects.ts";

const KINDS = {
  Ingress: "ingresses",
  IngressClass: "ingressClasses",
  Service: "services",
  EndpointSlice: "endpointSlices",
  Secret: "secrets",
  ConfigMap: "configMaps",
} as const satisfies Record<string, keyof Snapshot>;

/**
 * Sorts objects into a Snapshot. Kinds the route compiler does not read are ignored; an object without
 * `kind` or `metadata.name` is an error naming where it came from.
 */
export function snapshotFromObjects(objects: readonly unknown[], source: string): Snapshot {
  const snapshot = emptySnapshot();
  objects.forEach((obj, i) => {
    if (!isRecord(obj)) throw new ManifestError(source, `object ${i + 1} is not a mapping`);
    if (typeof obj.kind !== "string") throw new ManifestError(source, `object ${i + 1} has no kind`);
    const meta = obj.metadata;
    if (!isRecord(meta) || typeof meta.name !== "string" || meta.name === "") {
      throw new ManifestError(source, `${obj.kind} (object ${i + 1}) has no metadata.name`);
    }
    if (!Object.hasOwn(KINDS, obj.kind)) return;
    const field = KINDS[obj.kind as keyof typeof KINDS];
    // The compiler reads these objects defensively; manifests are trusted only to be mappings with names.
    (snapshot[field] as unknown[] | undefined)?.push(obj);
  });
  return snapshot;
}

export function mergeSnapshots(parts: readonly Snapshot[]): Snapshot {
  const all = emptySnapshot();
  for (const part of parts) for (const key of Object.keys(all) as (keyof Snapshot)[]) (all[key] as unknown[]).push(...(part[key] ?? []));
  return all;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
