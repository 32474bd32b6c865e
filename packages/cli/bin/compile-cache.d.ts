// Types for compile-cache.js, which stays plain JavaScript like bin/bollard.js.
export declare function compileCacheDir(env: Record<string, string | undefined>): string | undefined;
export declare function startCompileCache(env: Record<string, string | undefined>): string | undefined;
