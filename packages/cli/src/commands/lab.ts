import { startControlPlane } from "@bollard/lab";
import { type Command, CliUsageError, parseFlags } from "../command.ts";

const usage = `usage: bollard lab control-plane --kubeconfig FILE [--crds DIR]

  control-plane   start etcd + kube-apiserver in the foreground; write an admin kubeconfig to FILE once
                  /readyz answers; stop everything on SIGINT/SIGTERM`;

export const command: Command = async (argv) => {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "control-plane":
      return controlPlane(rest);
    case undefined:
    case "--help":
    case "-h":
      process.stdout.write(`${usage}\n`);
      return sub === undefined ? 2 : 0;
    default:
      throw new CliUsageError(`unknown lab command "${sub}"\n${usage}`);
  }
};

async function controlPlane(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    kubeconfig: { type: "string" },
    crds: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (values.kubeconfig === undefined) throw new CliUsageError("--kubeconfig FILE is required");
  const log = (line: string) => process.stderr.write(`bollard lab: ${line}\n`);
  const cp = await startControlPlane({ kubeconfigPath: values.kubeconfig, log });
  if (values.crds !== undefined) {
    const { execFileSync } = await import("node:child_process");
    execFileSync(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, "apply", "--server-side", "-f", values.crds], {
      stdio: ["ignore", "inherit", "inherit"],
    });
  }
  log(`ready: kubectl --kubeconfig ${values.kubeconfig} (${cp.binaries.kubectl}); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  log("stopping");
  await cp.stop();
  return 0;
}
