// The one case table for routing: each fixture `<name>.yaml` (objects in) has `<name>.expected.yaml` with the
// compiled table and URL → answer pairs. The compiler tests and the `bollard explain route` CLI tests both
// read it, so the offline command and the proxy's router cannot drift apart.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { RouteAnswer } from "../src/index.ts";

export const fixturesDir = join(import.meta.dirname, "fixtures");

export interface RouteCase {
  name: string;
  /** the objects, as a file path `bollard explain route -f` can read */
  fixture: string;
  table: unknown;
  matches: { url: string; expect: RouteAnswer }[];
}

export function loadRouteCases(): RouteCase[] {
  return readdirSync(fixturesDir)
    .filter((f) => f.endsWith(".expected.yaml"))
    .sort()
    .map((f) => {
      const name = f.slice(0, -".expected.yaml".length);
      const expected = parse(readFileSync(join(fixturesDir, f), "utf8")) as Omit<RouteCase, "name" | "fixture">;
      return { name, fixture: join(fixturesDir, `${name}.yaml`), table: expected.table, matches: expected.matches };
    });
}
