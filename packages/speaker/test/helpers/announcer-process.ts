// The announcer alone, driven over stdin/stdout, so a test can run it inside a node's network namespace
// (as nobody with CAP_NET_RAW only). Each stdin line is a JSON array of owned addresses; each answer
// is one JSON line with the outcomes. Ends when stdin closes.
import { createInterface } from "node:readline";
import { createLogger } from "@bollard/core";
import { Registry } from "prom-client";
import { createAnnouncer, type OwnedAddress } from "../../src/announcer/announcer.ts";
import { createAnnouncerMetrics } from "../../src/announcer/metrics.ts";

const logger = createLogger({ name: "announcer-process", level: "warn", destination: process.stderr });
const registry = new Registry();
const announcer = createAnnouncer({ logger, metrics: createAnnouncerMetrics(registry), garpRefreshMs: 0 });

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "metrics") {
    process.stdout.write(`${JSON.stringify({ metrics: await registry.getMetricsAsJSON() })}\n`);
    continue;
  }
  const outcomes = announcer.setOwned(JSON.parse(line) as OwnedAddress[]);
  process.stdout.write(`${JSON.stringify({ outcomes, uid: process.getuid?.() })}\n`);
}
announcer.close();
