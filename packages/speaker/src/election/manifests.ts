// YAML/JSON manifest text → objects, for `bollard explain announcer` and fixtures.
import { parseAllDocuments } from "yaml";

/** Manifest text that is not valid YAML; names the file and the position. */
export class ManifestError extends Error {
  override name = "ManifestError";
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.file = file;
  }
}

/** Every document of a multi-document YAML (or JSON) text; empty documents are dropped. */
export function parseManifests(text: string, file: string): unknown[] {
  return parseAllDocuments(text).flatMap((doc) => {
    const [error] = doc.errors;
    if (error !== undefined) throw new ManifestError(file, error.message);
    const object: unknown = doc.toJS();
    return object === null || object === undefined ? [] : [object];
  });
}
