// Table-driven: each fixtures/allocation/NAME.yaml (pools, namespaces, Services) goes through the
// same pure pipeline as `bollard explain allocation`; the result must equal NAME.json.
// BOLLARD_UPDATE_FIXTURES=1 rewrites the .json files (review the diff before committing).
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parseManifests } from "@bollard/core";
import { explainAllocation } from "../src/index.ts";

const dir = join(import.meta.dirname, "fixtures", "allocation");

for (const file of readdirSync(dir).filter((name) => name.endsWith(".yaml")).sort()) {
  test(`allocation fixture ${file}`, () => {
    const path = join(dir, file);
    const result = explainAllocation(parseManifests(readFileSync(path, "utf8"), path));
    const actual = "errors" in result ? { errors: result.errors.map((error) => error.message) } : result;
    const expectedPath = path.replace(/\.yaml$/, ".json");
    if (process.env.BOLLARD_UPDATE_FIXTURES === "1") writeFileSync(expectedPath, `${JSON.stringify(actual, null, 2)}\n`);
    assert.deepEqual(actual, JSON.parse(readFileSync(expectedPath, "utf8")));
  });
}
