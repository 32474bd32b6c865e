// Sorts a heap of Kubernetes objects (from YAML files or informers) into the election's inputs.
import type { ElectionInput } from "./elect.ts";

/** An object without the fields every Kubernetes object has. */
export class ObjectShapeError extends Error {
  override name = "ObjectShapeError";
  readonly index: number;
  constructor(index: number, message: string) {
    super(`object #${index + 1}: ${message}`);
    this.index = index;
  }
}

type Objects = Omit<ElectionInput, "liveSpeakers" | "lastGoodPools">;

const FIELDS = {
  Node: "nodes",
  Service: "services",
  EndpointSlice: "endpointSlices",
  IPAddressPool: "pools",
  L2Advertisement: "advertisements",
} as const satisfies Record<string, keyof Objects>;

/** Groups objects by kind, keeping input order; `List` objects are unpacked, other kinds skipped. */
export function groupObjects(objects: readonly unknown[]): Objects {
  const grouped: Objects = { nodes: [], services: [], endpointSlices: [], pools: [], advertisements: [] };
  // Items of a typed list (EndpointSliceList) may omit their kind, as the API server sends them.
  const visit = (object: unknown, index: number, itemKind?: string) => {
    if (object === null || object === undefined) return; // an empty YAML document
    if (typeof object !== "object") throw new ObjectShapeError(index, "is not a mapping");
    const { metadata, items } = object as { kind?: unknown; metadata?: { name?: unknown }; items?: unknown };
    const kind = (object as { kind?: unknown }).kind ?? itemKind;
    if (typeof kind !== "string") throw new ObjectShapeError(index, "has no kind");
    if (kind.endsWith("List") && Array.isArray(items)) {
      const listed = kind === "List" ? undefined : kind.slice(0, -"List".length);
      for (const item of items) visit(item, index, listed);
      return;
    }
    if (typeof metadata?.name !== "string") throw new ObjectShapeError(index, `${kind} has no metadata.name`);
    if (Object.hasOwn(FIELDS, kind)) (grouped[FIELDS[kind as keyof typeof FIELDS]] as unknown[]).push(object);
  };
  for (const [index, object] of objects.entries()) visit(object, index);
  return grouped;
}
