// The machine and the versions a run was measured with, for the report's header.
import { readFileSync } from "node:fs";
import { availableParallelism, release } from "node:os";
import { ensureControlPlaneBinaries } from "@bollard/lab";
import { repoRoot } from "./cluster.ts";
import { NGINX } from "./nginx.ts";
import { commandOutput } from "./proc.ts";

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  versions: Record<string, string>;
  /** the commit measured, and the packages that had uncommitted changes (other work in progress) */
  source: string;
}

export async function describeMachine(): Promise<Machine> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  const binaries = await ensureControlPlaneBinaries();
  const firstLine = (s: string) => s.split("\n")[0] ?? "";
  return {
    nproc: Number(commandOutput("nproc", [])) || availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memoryGiB: Math.round((Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024 / 1024) * 10) / 10,
    kernel: release(),
    source: describeSource(),
    versions: {
      node: process.version,
      nginx: firstLine(commandOutput(NGINX, ["-v"])).replace(/^nginx version:\s*nginx\//, ""),
      wrk: firstLine(commandOutput("wrk", ["-v"])).replace(/\s*\[.*$/, "").replace(/^wrk\s+/, ""),
      "kube-apiserver": firstLine(commandOutput(binaries.kubeApiServer, ["--version"])),
      etcd: firstLine(commandOutput(binaries.etcd, ["--version"])).replace(/^etcd Version:\s*/, ""),
      arping: /ARPing ([\d.]+)/.exec(commandOutput("arping", ["--help"]))?.[1] ?? "unknown",
    },
  };
}

function describeSource(): string {
  const commit = commandOutput("git", ["-C", repoRoot, "rev-parse", "--short", "HEAD"]);
  const dirty = new Set(
    commandOutput("git", ["-C", repoRoot, "status", "--porcelain", "--", "packages"])
      .split("\n")
      .map((l) => /packages\/([^/]+)\//.exec(l)?.[1])
      .filter((p): p is string => p !== undefined),
  );
  return dirty.size === 0 ? `commit ${commit}` : `commit ${commit} with uncommitted changes in ${[...dirty].sort().map((p) => `packages/${p}`).join(", ")}`;
}
