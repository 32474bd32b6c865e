// Kubernetes manifests on disk → plain objects, for `bollard explain` and the tests' fixtures. Which kinds
// matter, and what shape they must have, is each component's business.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { loadOnFirstUse } from "../load-on-first-use.ts";

// yaml is loaded by the first parse: ~9 MiB of resident memory in every component that never reads a manifest.
const yaml = loadOnFirstUse<typeof import("yaml")>("yaml");
const parseAllDocuments = (text: string) => yaml().parseAllDocuments(text);

/** A manifest that cannot be read or parsed; the message starts with the file (or text) it came from. */
export class ManifestError extends Error {
  override name = "ManifestError";
  readonly source: string;
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.source = source;
  }
}

/**
 * The objects in a multi-document YAML (or JSON) text, in order. Empty documents are skipped and
 * `kind: …List` objects are replaced by their items; items of a typed list (`EndpointSliceList`) that omit
 * `kind` and `apiVersion`, as the API server sends them, get the list's. `source` names the text in errors.
 */
export function parseManifests(text: string, source: string): unknown[] {
  return parseAllDocuments(text).flatMap((doc, i) => {
    const [error] = doc.errors;
    if (error !== undefined) throw new ManifestError(source, `document ${i + 1}: ${error.message}`);
    const value: unknown = doc.toJS();
    return value === null || value === undefined ? [] : flattenLists(value);
  });
}

function flattenLists(value: unknown): unknown[] {
  const list = value as { apiVersion?: unknown; kind?: unknown; items?: unknown };
  if (typeof list.kind !== "string" || !list.kind.endsWith("List") || !Array.isArray(list.items)) return [value];
  const kind = list.kind === "List" ? undefined : list.kind.slice(0, -"List".length);
  return list.items.flatMap((item: unknown) => {
    const typed = kind !== undefined && typeof item === "object" && item !== null && !("kind" in item);
    return flattenLists(typed ? { apiVersion: list.apiVersion, kind, ...item } : item);
  });
}

/** One file's objects, as `parseManifests` reads them. */
export interface ManifestFile {
  path: string;
  objects: unknown[];
}

/**
 * The files behind `paths`, in order: a file as given (whatever its name), a directory walked recursively in
 * sorted order for `.yaml`, `.yml` and `.json` files. Every path is checked before any file is read.
 */
export async function readManifests(paths: readonly string[]): Promise<ManifestFile[]> {
  const files: string[] = [];
  for (const path of paths) files.push(...(await manifestFiles(path, true)));
  const read: ManifestFile[] = [];
  for (const path of files) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      throw new ManifestError(path, (error as Error).message);
    }
    read.push({ path, objects: parseManifests(text, path) });
  }
  return read;
}

async function manifestFiles(path: string, given: boolean): Promise<string[]> {
  let names: string[] | null;
  try {
    names = (await stat(path)).isDirectory() ? (await readdir(path)).sort() : null;
  } catch (error) {
    throw new ManifestError(path, (error as Error).message);
  }
  if (names === null) return given || /\.(ya?ml|json)$/.test(path) ? [path] : [];
  const files: string[] = [];
  for (const name of names) files.push(...(await manifestFiles(join(path, name), false)));
  return files;
}
