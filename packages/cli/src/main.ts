// The `bollard` command: one module per subcommand under ./commands, loaded on demand so that
// `bollard explain` never pays for the proxy or the AF_PACKET addon.
import { readFileSync } from "node:fs";
import { flushCompileCache } from "node:module";
import { CliUsageError, type Command } from "./command.ts";

const commands: Record<string, () => Promise<{ command: Command }>> = {
  controller: () => import("./commands/controller.ts"),
  speaker: () => import("./commands/speaker.ts"),
  ingress: () => import("./commands/ingress.ts"),
  explain: () => import("./commands/explain.ts"),
  migrate: () => import("./commands/migrate.ts"),
  lab: () => import("./commands/lab.ts"),
};

const usage = `usage: bollard <command> [flags]

commands:
  controller   allocate LoadBalancer addresses from IPAddressPools
  speaker      announce allocated addresses at layer 2 (ARP/NDP)
  ingress      serve Ingress rules as an HTTP(S) reverse proxy
  explain      answer "which route / address / announcer" offline from manifests
  migrate      report, offline, what becomes of ingress-nginx Ingresses and their annotations
  lab          a local control plane and network lab

run 'bollard <command> --help' for its flags; 'bollard --version' prints the version`;

/** The release version (the cli package's, equal to the chart's appVersion). */
export function bollardVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${usage}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "version") {
    process.stdout.write(`bollard ${bollardVersion()}\n`);
    return 0;
  }
  const load = commands[name];
  if (load === undefined) {
    process.stderr.write(`bollard: unknown command "${name}"\n${usage}\n`);
    return 2;
  }
  try {
    const { command } = await load();
    // Node writes its compile cache (bin/compile-cache.js) at exit; a long-running component may never exit
    // cleanly, so what it has loaded is written now (a no-op when the cache is off or already holds it).
    flushCompileCache();
    return await command(rest);
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(`bollard ${name}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
