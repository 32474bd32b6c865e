// What a V8 .cpuprofile (node --cpu-prof) says: where the samples landed, by function (self time), and how much
// of the time the process was idle, in GC, or in native code outside JavaScript ("(program)").
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileFrame {
  /** function name and where it is: `name (file:line)`; file shortened to the package or module */
  frame: string;
  selfPercent: number;
}

export interface ProfileSummary {
  file: string;
  durationS: number;
  idlePercent: number;
  gcPercent: number;
  programPercent: number;
  top: ProfileFrame[];
  /** self time summed by where the code lives (node internals, undici, @bollard/…, …), of non-idle time */
  byArea: { area: string; percent: number }[];
}

export function shortLocation(url: string): string {
  if (url === "") return "native";
  const path = url.replace(/^file:\/\//, "");
  const nm = path.lastIndexOf("node_modules/");
  if (nm >= 0) return path.slice(nm + "node_modules/".length);
  const pkg = /\/packages\/([^/]+)\/(.*)$/.exec(path);
  if (pkg) return `@bollard/${pkg[1]}/${pkg[2]}`;
  return path.replace(/^node:/, "node:");
}

export function areaOf(url: string): string {
  if (url === "") return "native / runtime";
  if (url.startsWith("node:")) {
    const parts = url.slice(5).split("/");
    return `Node.js ${parts[0] === "internal" && parts.length > 2 ? parts[1] : (parts[0] ?? "").replace(/^internal$/, parts[1] ?? "internal")}`;
  }
  const loc = shortLocation(url);
  if (loc.startsWith("@bollard/")) return loc.split("/").slice(0, 2).join("/");
  return loc.split("/")[0] ?? loc;
}

export async function summarizeProfile(file: string, topN = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; attribute it to that sample's node
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  let idle = 0;
  let gc = 0;
  let program = 0;
  const frames = new Map<string, number>();
  const areas = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") idle += us;
    else if (functionName === "(garbage collector)") gc += us;
    else if (functionName === "(program)") program += us;
    const name = `${functionName || "(anonymous)"}${url ? ` (${shortLocation(url)}:${lineNumber + 1})` : ""}`;
    frames.set(name, (frames.get(name) ?? 0) + us);
    if (functionName !== "(idle)") {
      const area = functionName.startsWith("(") ? functionName : areaOf(url);
      areas.set(area, (areas.get(area) ?? 0) + us);
    }
  }
  const busy = total - idle || 1;
  return {
    file,
    durationS: (profile.endTime - profile.startTime) / 1e6,
    idlePercent: (idle / total) * 100,
    gcPercent: (gc / total) * 100,
    programPercent: (program / total) * 100,
    top: [...frames.entries()]
      .filter(([name]) => !name.startsWith("(idle)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([frame, us]) => ({ frame, selfPercent: (us / total) * 100 })),
    byArea: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, percent: (us / busy) * 100 })),
  };
}

/** The newest .cpuprofile in a directory (node --cpu-prof-dir writes one per process). */
export async function profilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(dir, f));
}
