// The native data plane as a process of its own, speaking the protocol of packages/ingress/test/hostile/
// data-plane-main.ts (argv[2]: options as JSON; prints the ports; one IngressSpec[] JSON per stdin line →
// `applied`), so the hostile-input suite can judge it from its listeners exactly as it judges the Node plane.
import { createInterface } from "node:readline";
import { generateDefaultCertificate } from "@bollard/ingress";
import { type IngressSpec, tableOf } from "../../ingress/test/helpers/backends.ts";
import { createDataPlane, type DataPlaneOptions } from "../src/index.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as Partial<DataPlaneOptions>;
const plane = createDataPlane({ ...options, defaultCertificate: generateDefaultCertificate() });
const ports = plane.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: 0, workers: 1 });
process.stdout.write(`${JSON.stringify(ports)}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  if (line === "gc") {
    (globalThis as { gc?: () => void }).gc?.();
    const { heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.stdout.write(`collected ${JSON.stringify({ heapUsed, external, arrayBuffers })}\n`);
    continue;
  }
  plane.setTable(tableOf(JSON.parse(line) as IngressSpec[]));
  process.stdout.write("applied\n");
}
// stdin closed: the test is done with us.
await plane.shutdown(1_000);
process.exit(0);
