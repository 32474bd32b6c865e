// Builds the data plane's Rust crate (native/) from source with cargo and puts the N-API module at
// build/dataplane.node. The result is cached under ~/.cache/bollard/dataplane/<key>/, the key being a hash of
// the rustc version, Cargo.lock, Cargo.toml, build.rs and every source file, so an unchanged tree never
// rebuilds (cargo's own target directory sits beside it, so a changed tree rebuilds only what changed).
//
//   node scripts/build-native.ts          build (or take from the cache)
//   node scripts/build-native.ts --test   then run the crate's unit tests (`cargo test`), output as is
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, utimesSync } from "node:fs";
import { homedir } from "node:os";
import { join, relative, resolve } from "node:path";

const packageDir = resolve(import.meta.dirname, "..");
const crateDir = join(packageDir, "native");
const output = join(packageDir, "build", "dataplane.node");
const cacheRoot = process.env.BOLLARD_CACHE_DIR ?? join(homedir(), ".cache", "bollard");
const log = (line: string) => process.stdout.write(`build-native: ${line}\n`);

function fail(message: string): never {
  process.stderr.write(`build-native: ${message}\n`);
  process.exit(1);
}

/** cargo from $CARGO, PATH, rustup's ~/.cargo/bin or the rust image's /usr/local/cargo/bin. */
function findCargo(): string {
  const candidates = [process.env.CARGO, ...(process.env.PATH ?? "").split(":").map((d) => join(d, "cargo")), join(homedir(), ".cargo", "bin", "cargo"), "/usr/local/cargo/bin/cargo"];
  const found = candidates.find((c) => c !== undefined && c !== "" && existsSync(c));
  if (found === undefined) fail("cargo not found (looked in $CARGO, PATH, ~/.cargo/bin, /usr/local/cargo/bin); install Rust >= 1.85 with rustup");
  return found;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): void {
  const result = spawnSync(command, args, { cwd: crateDir, stdio: "inherit", env });
  if (result.status !== 0) fail(`${command} ${args.join(" ")} failed (exit ${result.status ?? result.signal})`);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? sourceFiles(path) : [path];
    });
}

const cargo = findCargo();
const cargoBin = resolve(cargo, "..");
// rustc beside cargo (rustup's proxies pick the toolchain the same way for both).
const env = { ...process.env, PATH: `${cargoBin}:${process.env.PATH ?? ""}`, CARGO_TARGET_DIR: join(cacheRoot, "dataplane", "target") };
const rustc = spawnSync("rustc", ["-vV"], { env, encoding: "utf8" });
if (rustc.status !== 0) fail(`rustc -vV failed: ${rustc.stderr || rustc.error?.message}`);

const hash = createHash("sha256").update(rustc.stdout);
for (const file of ["Cargo.lock", "Cargo.toml", "build.rs", ...sourceFiles(join(crateDir, "src")).map((f) => relative(crateDir, f))]) {
  hash.update(`\0${file}\0`).update(readFileSync(join(crateDir, file)));
}
const key = hash.digest("hex").slice(0, 24);
const cached = join(cacheRoot, "dataplane", key, "dataplane.node");

if (existsSync(cached)) {
  log(`cached (${key})`);
} else {
  log(`cargo build --release (key ${key}; a cold build takes minutes)`);
  const started = Date.now();
  // Every checkout shares cargo's target directory (so dependencies build once), and cargo judges this crate fresh
  // by timestamps: sources older than another checkout's last build of the crate would pass for built, and that
  // checkout's library would be cached under this tree's key. These sources are not in the cache (their hash is
  // not), so they are stamped now: cargo rebuilds this crate (seconds), never its dependencies.
  const now = new Date();
  for (const file of ["Cargo.toml", "build.rs", ...sourceFiles(join(crateDir, "src")).map((f) => relative(crateDir, f))]) utimesSync(join(crateDir, file), now, now);
  run(cargo, ["build", "--release", "--locked", "--lib"], env);
  mkdirSync(join(cacheRoot, "dataplane", key), { recursive: true });
  copyFileSync(join(env.CARGO_TARGET_DIR, "release", "libbollard_dataplane.so"), `${cached}.tmp`);
  renameSync(`${cached}.tmp`, cached);
  log(`built in ${Math.round((Date.now() - started) / 1000)} s`);
}
mkdirSync(join(packageDir, "build"), { recursive: true });
copyFileSync(cached, `${output}.tmp`);
renameSync(`${output}.tmp`, output);

if (process.argv.includes("--test")) {
  log("cargo test --release");
  run(cargo, ["test", "--release", "--locked", "--no-default-features", "--lib"], env);
}
