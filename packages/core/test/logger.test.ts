import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { afterEach, describe, it } from "node:test";
import { createLogger, LogLevelError } from "../src/index.ts";

function capture() {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line));
  });
  return { stream, lines };
}

describe("createLogger", () => {
  const saved = process.env.LOG_LEVEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  });

  it("writes one JSON object per line with name, level and fields", () => {
    const { stream, lines } = capture();
    const logger = createLogger({ name: "bollard-test", level: "info", destination: stream });
    logger.info({ pool: "default" }, "allocated");
    logger.debug("hidden");
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.name, "bollard-test");
    assert.equal(lines[0]?.level, 30);
    assert.equal(lines[0]?.pool, "default");
    assert.equal(lines[0]?.msg, "allocated");
  });

  it("takes the level from LOG_LEVEL when no flag is given, and the flag over it", () => {
    process.env.LOG_LEVEL = "debug";
    assert.equal(createLogger({ name: "x", destination: new PassThrough() }).level, "debug");
    assert.equal(createLogger({ name: "x", level: "warn", destination: new PassThrough() }).level, "warn");
    delete process.env.LOG_LEVEL;
    assert.equal(createLogger({ name: "x", destination: new PassThrough() }).level, "info");
  });

  it("refuses an unknown level, naming it", () => {
    assert.throws(() => createLogger({ name: "x", level: "verbose" }), (error: unknown) => {
      return error instanceof LogLevelError && error.level === "verbose" && /"verbose"/.test(error.message);
    });
  });
});
