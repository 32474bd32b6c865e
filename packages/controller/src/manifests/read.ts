// Reading Kubernetes manifests from disk, for `bollard explain` and the tests' fixtures.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

/** A manifest file that is not valid YAML; names the file and the document. */
export class ManifestError extends Error {
  override name = "ManifestError";
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

/** Parses multi-document YAML; `kind: List` objects are flattened into their items. */
export function parseManifests(text: string, path: string): unknown[] {
  const objects: unknown[] = [];
  parseAllDocuments(text).forEach((document, i) => {
    if (document.errors.length > 0) {
      throw new ManifestError(path, `document ${i + 1}: ${(document.errors[0] as Error).message}`);
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return;
    const list = value as { kind?: unknown; items?: unknown };
    if (typeof list.kind === "string" && list.kind.endsWith("List") && Array.isArray(list.items)) objects.push(...list.items);
    else objects.push(value);
  });
  return objects;
}

/**
 * Objects from each path in order: a file as given, or a directory walked (sorted, recursively)
 * for `.yaml`, `.yml` and `.json` files.
 */
export async function readManifests(paths: readonly string[]): Promise<unknown[]> {
  const objects: unknown[] = [];
  for (const path of paths) {
    for (const file of await manifestFiles(path, true)) {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (error) {
        throw new ManifestError(file, (error as Error).message);
      }
      objects.push(...parseManifests(text, file));
    }
  }
  return objects;
}

async function manifestFiles(path: string, given: boolean): Promise<string[]> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    throw new ManifestError(path, (error as Error).message);
  }
  if (!isDirectory) return given || /\.(ya?ml|json)$/.test(path) ? [path] : [];
  const files: string[] = [];
  for (const name of (await readdir(path)).sort()) files.push(...(await manifestFiles(join(path, name), false)));
  return files;
}
