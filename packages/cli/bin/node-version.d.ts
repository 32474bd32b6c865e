// Types for node-version.js, which stays plain JavaScript so that any Node can load it.
export declare const minimumNodeMajor: number;
export declare function nodeVersionProblem(version: string, execPath: string): string | undefined;
export declare function exitUnlessNodeCanRun(): void;
