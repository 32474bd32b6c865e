// What a benchmark part is and what it hands back to the runner, which writes it as JSON and markdown.
import type { Scope } from "./scope.ts";

export interface PartContext {
  /** scratch directory for configs, logs and profiles of this part */
  dir: string;
  scope: Scope;
  log(line: string): void;
}

/** One row of the summary: a target from the benchmarks issue and what this run measured. */
export interface Verdict {
  id: string;
  what: string;
  target: string;
  measured: string;
  /** null when the figure is reported, not judged */
  met: boolean | null;
}

export interface Table {
  caption?: string;
  columns: string[];
  rows: string[][];
}

export interface PartOutput {
  /** the exact commands whose figures are reported */
  commands: string[];
  tables: Table[];
  verdicts: Verdict[];
  notes: string[];
  /** raw samples, kept in the JSON only */
  data: unknown;
}

export interface Part {
  name: string;
  title: string;
  run(ctx: PartContext): Promise<PartOutput>;
}
