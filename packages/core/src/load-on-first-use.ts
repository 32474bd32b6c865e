// Dependencies that only some commands need are required on first use, not with @bollard/core, so that every
// component does not pay their resident memory (packages/core/README.md "Memory").
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** A getter that requires `specifier` (resolved from @bollard/core) the first time it is called. */
export function loadOnFirstUse<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= require(specifier) as T;
    return loaded;
  };
}
