// `bollard speaker --node-name NODE`: announce this node's share of LoadBalancer addresses at layer 2.
import { DEFAULT_MEMBERSHIP_PORT, runSpeaker } from "@bollard/speaker";
import { CliUsageError, type Command, parseFlags, parsePort } from "../command.ts";
import { componentFlags, componentUsage, prepareComponent } from "../component.ts";

const METRICS_PORT = 7472;

const usage = `usage: bollard speaker --node-name NODE [flags]

  --node-name NODE            this node's name (default: env NODE_NAME)
  --config-namespace NS       where IPAddressPools and L2Advertisements live (default: metallb-system)
  --memberlist-secret NS/NAME Secret whose data.secretkey authenticates membership
                              (default: memberlist in env POD_NAMESPACE or the config namespace)
  --bind-port PORT            UDP port of the membership heartbeats (default: ${DEFAULT_MEMBERSHIP_PORT})
  --interfaces IF1,IF2        only ever answer on these interfaces
  --ignore-exclude-lb         let nodes labelled exclude-from-external-load-balancers announce
  --load-balancer-class NAME  serve Services with this spec.loadBalancerClass (default: those with none)
  --garp-refresh DURATION     re-send gratuitous ARP/NA this often, e.g. 30s (default: 0, never)
${componentUsage(METRICS_PORT, 30)}`;

/** "30s", "500ms", "2m" or plain seconds ("30") → milliseconds. */
function parseDuration(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new CliUsageError(`${flag} "${text}" is not a duration like 30s, 500ms or 2m`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Math.round(Number(match[1]) * unit);
}

export const command: Command = async (argv) => {
  const { values } = parseFlags(argv, {
    ...componentFlags(METRICS_PORT),
    "node-name": { type: "string" },
    "config-namespace": { type: "string", default: "metallb-system" },
    "memberlist-secret": { type: "string" },
    // The Helm chart's spellings of the same two flags.
    "membership-secret": { type: "string" },
    "membership-port": { type: "string" },
    "bind-port": { type: "string" },
    interfaces: { type: "string" },
    "ignore-exclude-lb": { type: "boolean", default: false },
    "load-balancer-class": { type: "string" },
    "garp-refresh": { type: "string", default: "0" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const nodeName = values["node-name"] ?? process.env.NODE_NAME;
  if (!nodeName) throw new CliUsageError(`--node-name (or env NODE_NAME) is required\n${usage}`);
  const configNamespace = values["config-namespace"];
  const secretFlag = values["memberlist-secret"] ?? values["membership-secret"] ?? "memberlist";
  const [secretNamespace, secretName] = secretFlag.includes("/")
    ? secretFlag.split("/", 2)
    : [process.env.POD_NAMESPACE || configNamespace, secretFlag];
  if (!secretNamespace || !secretName) throw new CliUsageError(`--memberlist-secret "${secretFlag}" is not NAMESPACE/NAME`);
  const portFlag = values["bind-port"] ?? values["membership-port"];
  const bindPort = portFlag === undefined ? DEFAULT_MEMBERSHIP_PORT : parsePort("--bind-port", portFlag, 1);
  const garpRefreshMs = parseDuration("--garp-refresh", values["garp-refresh"]);
  const interfaces = values.interfaces
    ?.split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

  const { start } = prepareComponent({ name: "bollard-speaker", values });
  return start((context) =>
    runSpeaker(
      {
        nodeName,
        configNamespace,
        memberlistSecret: { namespace: secretNamespace, name: secretName },
        bindPort,
        interfaces: interfaces === undefined || interfaces.length === 0 ? null : interfaces,
        ignoreExcludeLB: values["ignore-exclude-lb"],
        loadBalancerClass: values["load-balancer-class"] ?? null,
        garpRefreshMs,
      },
      context,
    ),
  );
};
