// A data plane in a process of its own, for tests that judge it from outside: argv[2] is its options (JSON);
// it prints `{"httpPort":…,"httpsPort":…}` once listening, then reads route specs (one JSON IngressSpec[] per
// line) from stdin and prints `applied` after each, or `gc` (prints `collected`). A crash is the process's exit, its memory its own RSS.
import { createInterface } from "node:readline";
import { createLogger } from "@bollard/core";
import { createProxy, generateDefaultCertificate, type ProxyOptions } from "../../src/index.ts";
import { type IngressSpec, tableOf } from "../helpers/backends.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as Partial<ProxyOptions>;
const logger = createLogger({ name: "data-plane-under-test", level: process.env.BOLLARD_TEST_LOG_LEVEL ?? "error" });
const proxy = createProxy({ ...options, defaultCertificate: generateDefaultCertificate(), logger });
const ports = await proxy.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: 0 });
process.stdout.write(`${JSON.stringify(ports)}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  if (line === "gc") {
    // A last-resort collection before memory is measured (node runs with --expose-gc): what V8 does under memory
    // pressure — a full collection that also shrinks the young generation and returns pooled pages — so that RSS
    // compares what the process holds, not how far V8's heap happened to have grown.
    (globalThis as { gc?: (options: object) => void }).gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
    const { heapUsed, heapTotal, external, arrayBuffers, rss } = process.memoryUsage();
    process.stdout.write(`collected ${JSON.stringify({ heapUsed, heapTotal, external, arrayBuffers, rss })}\n`);
    continue;
  }
  proxy.setTable(tableOf(JSON.parse(line) as IngressSpec[]));
  process.stdout.write("applied\n");
}
// stdin closed: the test is done with us.
await proxy.shutdown(1_000);
process.exit(0);
