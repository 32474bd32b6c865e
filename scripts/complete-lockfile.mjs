// npm leaves a platform-specific optional dependency out of package-lock.json when the registry it talks to
// does not serve that platform's package (this machine's registry serves only some of @biomejs/cli-*), and
// `npm ci` then refuses the lock as out of sync. This adds the missing entries, marked optional with their
// os/cpu, so `npm ci` skips them on every other platform exactly as it would with a complete lock.
// Runs as the root package's postinstall; plain JS so any Node that runs npm can run it.
import { readFileSync, writeFileSync } from "node:fs";

const lockPath = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, "utf8"));
const packages = lock.packages;
const platformOf = (name) => {
  const m = /-(android|darwin|linux|win32|freebsd)-(arm64|x64|arm|ia32)(-musl)?$/.exec(name);
  return m ? { os: [m[1]], cpu: [m[2]], ...(m[3] ? { libc: ["musl"] } : {}) } : undefined;
};
let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  if (!path.endsWith("node_modules/@biomejs/biome")) continue;
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `${path.slice(0, -"@biomejs/biome".length)}${dep}`;
    const platform = platformOf(dep);
    if (packages[key] !== undefined || platform === undefined) continue;
    packages[key] = { version, ...platform, dev: entry.dev, optional: true };
    added++;
  }
}
if (added > 0) {
  lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)));
  writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`complete-lockfile: added ${added} platform entries npm could not resolve`);
}
