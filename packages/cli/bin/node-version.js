// The Node version check of bin/bollard.js and bin/warm-compile-cache.js, plain JavaScript so that any Node can run it.
export const minimumNodeMajor = 24;

/** Undefined when `version` (process.versions.node, e.g. "20.20.2") can run Bollard, else the line to print. */
export function nodeVersionProblem(version, execPath) {
  const major = Number.parseInt(String(version).split(".")[0] ?? "", 10);
  if (Number.isInteger(major) && major >= minimumNodeMajor) return undefined;
  return (
    `bollard: needs Node >= ${minimumNodeMajor}; this is Node ${version} (${execPath}). ` +
    `In the repository run \`npx bollard …\` (npm puts the pinned Node ${minimumNodeMajor} from \`npm ci\` first on PATH), ` +
    `or run it with a Node >= ${minimumNodeMajor}.`
  );
}

/** Exits with the advice on stderr when this Node cannot run Bollard: the first thing each bin script does. */
export function exitUnlessNodeCanRun() {
  const problem = nodeVersionProblem(process.versions.node, process.execPath);
  if (problem === undefined) return;
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
