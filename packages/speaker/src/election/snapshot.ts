// Sorts a heap of Kubernetes objects (from YAML files or informers) into the election's inputs.
import type { ElectionInput } from "./elect.ts";
import type { EndpointSliceObject, IPAddressPoolObject, L2AdvertisementObject, NodeObject, ServiceObject } from "./objects.ts";

/** An object without the fields every Kubernetes object has. */
export class ObjectShapeError extends Error {
  override name = "ObjectShapeError";
  readonly index: number;
  constructor(index: number, message: string) {
    super(`object #${index + 1}: ${message}`);
    this.index = index;
  }
}

type Objects = Omit<ElectionInput, "liveSpeakers">;

/** Groups objects by kind, keeping input order; `List` objects are unpacked, other kinds skipped. */
export function groupObjects(objects: readonly unknown[]): Objects {
  const grouped = {
    nodes: [] as NodeObject[],
    services: [] as ServiceObject[],
    endpointSlices: [] as EndpointSliceObject[],
    pools: [] as IPAddressPoolObject[],
    advertisements: [] as L2AdvertisementObject[],
  };
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
    switch (kind) {
      case "Node":
        grouped.nodes.push(object as NodeObject);
        break;
      case "Service":
        grouped.services.push(object as ServiceObject);
        break;
      case "EndpointSlice":
        grouped.endpointSlices.push(object as EndpointSliceObject);
        break;
      case "IPAddressPool":
        grouped.pools.push(object as IPAddressPoolObject);
        break;
      case "L2Advertisement":
        grouped.advertisements.push(object as L2AdvertisementObject);
        break;
      default:
        break;
    }
  };
  for (const [index, object] of objects.entries()) visit(object, index);
  return grouped;
}
