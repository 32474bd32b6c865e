// The container images (`npm run image`, deploy/container/build.sh): their sizes, how long a build takes with the
// Debian root file systems cached and with nothing but them cached, and whether the two give the same digests.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Part, PartOutput } from "./lib/part.ts";

const root = resolve(import.meta.dirname, "..");
const MiB = 1024 * 1024;

function build(out: string, extra: string[]): { seconds: number; env: Record<string, string> } {
  const started = performance.now();
  execFileSync("bash", [join(root, "deploy/container/build.sh"), "--out", out, ...extra], { stdio: ["ignore", "ignore", "inherit"] });
  const seconds = (performance.now() - started) / 1000;
  const env = Object.fromEntries(
    readFileSync(join(out, "images.env"), "utf8")
      .trim()
      .split("\n")
      .map((line) => line.split("=", 2) as [string, string]),
  );
  return { seconds, env };
}

export const part: Part = {
  name: "image",
  title: "Container images",
  async run(ctx): Promise<PartOutput> {
    ctx.log("build with cached layers where inputs match");
    const warm = build(join(ctx.dir, "a"), []);
    ctx.log("rebuild with --no-cache (only the Debian root file systems cached)");
    const rebuilt = build(join(ctx.dir, "b"), ["--no-cache"]);
    const rows = ["BOLLARD", "BOLLARD_SPEAKER"].map((v) => [
      warm.env[`${v}_IMAGE`] ?? "",
      `${(Number(warm.env[`${v}_UNPACKED_BYTES`]) / MiB).toFixed(1)} MiB`,
      `${(Number(warm.env[`${v}_ARCHIVE_BYTES`]) / MiB).toFixed(1)} MiB`,
      warm.env[`${v}_DIGEST`] ?? "",
      warm.env[`${v}_DIGEST`] === rebuilt.env[`${v}_DIGEST`] ? "yes" : `**no** (${rebuilt.env[`${v}_DIGEST`]})`,
    ]);
    const same = rows.every((r) => r[4] === "yes");
    return {
      commands: ["sudo npm run image                       # = bash deploy/container/build.sh", "sudo bash deploy/container/build.sh --no-cache"],
      tables: [
        {
          caption: "Both images for this machine's architecture; unpacked = as stored locally, archive = the OCI archive with gzip layers (what a registry stores). The two images share every layer but the one holding `node`.",
          columns: ["image", "unpacked", "OCI archive", "digest", "same digest in the second build"],
          rows,
        },
        {
          columns: ["build", "seconds (both images)"],
          rows: [
            ["first build (Debian root file systems cached; no layer cache)", warm.seconds.toFixed(0)],
            ["second build, same commit", rebuilt.seconds.toFixed(0)],
          ],
        },
      ],
      verdicts: [
        { id: "10", what: "image sizes (unpacked)", target: "reported", measured: rows.map((r) => `${r[0]?.split("/").pop()} ${r[1]}`).join(", "), met: null },
        { id: "10", what: "reproducible digests", target: "equal twice", measured: same ? "equal" : "differ", met: same },
      ],
      notes: ["A cold build also assembles the two Debian root file systems with mmdebstrap (minutes, network-bound); they are cached by package list."],
      data: { warm, rebuilt },
    };
  },
};
