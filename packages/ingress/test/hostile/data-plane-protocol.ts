// The protocol the data-plane process speaks to data-plane.ts (one loop, whatever implements the plane): it
// prints `{"httpPort":…,"httpsPort":…}` once listening, then reads stdin lines — one JSON IngressSpec[] (→
// `applied`), or `gc` (a last-resort collection, → `collected {heapUsed,…,rss}`) — and on stdin's end
// shuts the plane down and exits.
import { createInterface } from "node:readline";
import type { RouteTable } from "../../src/index.ts";
import { type IngressSpec, tableOf } from "../helpers/backends.ts";

export interface PlaneUnderTest {
  setTable(table: RouteTable): void;
  shutdown(deadlineMs: number): Promise<void>;
}

export async function serveDataPlaneProtocol(plane: PlaneUnderTest, ports: { httpPort: number; httpsPort: number | null }): Promise<never> {
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === "") continue;
    if (line === "gc") {
      // A last-resort collection before memory is measured (the process runs with --expose-gc): what V8 does under
      // memory pressure — a full collection that also shrinks the young generation and returns pooled pages — so
      // that RSS compares what the process holds, not how far V8's heap happened to have grown.
      (globalThis as { gc?: (options: object) => void }).gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
      const { heapUsed, heapTotal, external, arrayBuffers, rss } = process.memoryUsage();
      process.stdout.write(`collected ${JSON.stringify({ heapUsed, heapTotal, external, arrayBuffers, rss })}\n`);
      continue;
    }
    plane.setTable(tableOf(JSON.parse(line) as IngressSpec[]));
    process.stdout.write("applied\n");
  }
  // stdin closed: the test is done with us.
  await plane.shutdown(1_000);
  process.exit(0);
}
