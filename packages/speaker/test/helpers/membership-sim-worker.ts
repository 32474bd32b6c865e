// One process of the membership simulation (membership-sim.ts): hosts some members, each a real
// `startMembership` on its own loopback address, and reports their live-set changes as JSON lines on stdout.
// Usage: node membership-sim-worker.ts <config.json> <first index> <count>
// stdin: "bytes" → one line with every hosted member's membership bytes; "stop" → members leave, process exits.
import { createWriteStream, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { createInterface } from "node:readline";
import { createLogger } from "@bollard/core";
import { Registry } from "prom-client";
import { type Membership, startMembership } from "../../src/membership/membership.ts";

export interface SimConfig {
  port: number;
  key: string;
  /** [name, address] of every member of the cluster. */
  members: Array<[string, string]>;
}

const [configPath, firstArg, countArg] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath as string, "utf8")) as SimConfig;
const first = Number(firstArg);
const count = Number(countArg);
const key = Buffer.from(config.key, "hex");
// BOLLARD_SIM_TRACE_DIR: the process hosting the partition's minority logs its members' notes (suspicions, deaths
// with their accusers, refutations) at debug to a file there, to tell where the minority's deaths after a heal came from.
const traceDir = process.env.BOLLARD_SIM_TRACE_DIR;
const traced = traceDir !== undefined && config.members.slice(first, first + count).some(([n]) => n.startsWith("minority-"));
const logger = traced
  ? createLogger({ name: "sim", level: "debug", destination: createWriteStream(`${traceDir}/trace-${first}.ndjson`) })
  : createLogger({ name: "sim", level: "error", destination: process.stderr });
const peers = new Map(config.members);
const emit = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

const hosted: Array<{ name: string; membership: Membership; registry: Registry }> = [];
for (const [name, address] of config.members.slice(first, first + count)) {
  const registry = new Registry();
  const membership = await startMembership({
    nodeName: name,
    key,
    port: config.port,
    bindAddresses: [address],
    logger: traced ? logger.child({ self: name }) : logger,
    registry,
    onChange(live, { joined, left }) {
      // Start-up changes are many names at once: only their count matters there.
      emit(joined.length + left.length <= 20 ? { type: "change", t: Date.now(), member: name, size: live.size, joined, left } : { type: "change", t: Date.now(), member: name, size: live.size });
    },
  });
  hosted.push({ name, membership, registry });
}
for (const { membership } of hosted) membership.setPeers(peers);
emit({ type: "started", t: Date.now(), count: hosted.length });

// This process's own stalls (CPU starvation on a loaded machine): its members could answer nobody meanwhile,
// so their peers may rightly count them dead. The driver tells these deaths from false ones.
const LAG_INTERVAL_MS = 50;
let lastBeat = performance.now();
setInterval(() => {
  const now = performance.now();
  const lag = now - lastBeat - LAG_INTERVAL_MS;
  lastBeat = now;
  if (lag > 250) {
    emit({ type: "stall", t: Date.now(), ms: Math.round(lag) });
    if (traced) logger.info({ stallMs: Math.round(lag) }, "stall");
  }
}, LAG_INTERVAL_MS);

async function bytes(): Promise<void> {
  const perMember: Array<[string, number, number, number, number]> = [];
  for (const { name, registry } of hosted) {
    const values = (await registry.getSingleMetric("bollard_speaker_membership_bytes_total")?.get())?.values ?? [];
    const of = (direction: string) => values.find((v) => v.labels.direction === direction)?.value ?? 0;
    const datagrams = (await registry.getSingleMetric("bollard_speaker_membership_messages_received_total")?.get())?.values ?? [];
    const health = (await registry.getSingleMetric("bollard_speaker_membership_local_health")?.get())?.values[0]?.value ?? 0;
    perMember.push([name, of("sent"), of("received"), datagrams.reduce((sum, v) => sum + v.value, 0), health]);
  }
  emit({ type: "bytes", t: Date.now(), perMember });
}

// "profile-start" / "profile-stop <path>": a CPU profile of one phase (BOLLARD_SIM_PROFILE_DIR in the driver).
let profiler: Session | undefined;
async function profile(command: string, path: string | undefined): Promise<void> {
  if (command === "profile-start" && profiler === undefined) {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
  } else if (command === "profile-stop" && profiler !== undefined && path !== undefined) {
    const { profile: taken } = await profiler.post("Profiler.stop");
    profiler.disconnect();
    profiler = undefined;
    writeFileSync(path, JSON.stringify(taken));
  }
}

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "bytes") void bytes();
  if (line.startsWith("profile-")) void profile(...(line.split(" ") as [string, string | undefined]));
  if (line === "stop") void Promise.all(hosted.map((h) => h.membership.close())).then(() => process.exit(0));
});
