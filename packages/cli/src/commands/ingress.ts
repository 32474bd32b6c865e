// `bollard ingress`: the ingress controller. Flags in, options out; the work is in @bollard/ingress.
import { isIP } from "node:net";
import { createDataPlane, type DataPlane, registerDataPlaneMetrics } from "@bollard/dataplane";
import { type DataPlaneFactory, ObjectRefError, parseObjectRef, parseTrustedProxies, runIngress } from "@bollard/ingress";
import { CliUsageError, type Command, parseFlags, parsePort } from "../command.ts";
import { classFlags, classFlagsUsage, classOptionsOf } from "./class-flags.ts";
import { componentFlags, componentUsage, prepareComponent } from "../component.ts";

const METRICS_PORT = 10254;

const usage = `usage: bollard ingress [flags]

${classFlagsUsage}
  --watch-namespace NS              only this namespace (default: all)
  --publish-service NS/NAME         copy this Service's load-balancer addresses into Ingress status
  --default-ssl-certificate NS/NAME kubernetes.io/tls Secret served when SNI matches no Ingress
  --bind-address ADDR               IP address to listen on, the metrics server's too (default: all,
                                    IPv6 and IPv4: \`::\`, or 0.0.0.0 where IPv6 is off)
  --http-port N                     (default 80)
  --https-port N                    (default 443)
  --https-redirect-port N           port written into HTTP → HTTPS redirects (default 443, then left out)
  --workers N                       threads serving the ports (default 1)
  --trusted-proxies CIDR[,CIDR…]    peers whose X-Forwarded-* headers are believed (default: none)
  --max-body-size SIZE              request body limit, e.g. 1m, 512k, 1048576 (default 1m)
  --request-buffering on|off        read bodies up to --client-body-buffer-size before taking an upstream
                                    connection (default on; off streams every body)
  --client-body-buffer-size SIZE    (default 64k)
  --client-body-timeout SEC         longest pause while a client sends its body → 408 (default 60)
  --max-header-size SIZE            request line + headers (HTTP/2: header list) → 431 (default 16k)
  --enable-underscores-in-headers   forward header names with "_" (default: dropped, as nginx)
  --http2-max-concurrent-streams N  per connection (default 128)
  --http2-max-resets-per-second N   streams a client may reset per connection before GOAWAY (default 100)
  --upstream-connect-timeout SEC    (default 5)
  --upstream-read-timeout SEC       (default 60)
  --client-header-timeout SEC       (default 60)
  --shutdown-grace SEC              time in-flight requests get on SIGTERM (default 30)
${componentUsage(METRICS_PORT, 36)}`;

export const command: Command = async (argv) => {
  const { values: v } = parseFlags(argv, {
    ...componentFlags(METRICS_PORT),
    ...classFlags,
    "watch-namespace": { type: "string" },
    "publish-service": { type: "string" },
    "default-ssl-certificate": { type: "string" },
    "bind-address": { type: "string" },
    "http-port": { type: "string", default: "80" },
    "https-port": { type: "string", default: "443" },
    "https-redirect-port": { type: "string", default: "443" },
    workers: { type: "string", default: "1" },
    "trusted-proxies": { type: "string", multiple: true, default: [] },
    "max-body-size": { type: "string", default: "1m" },
    "request-buffering": { type: "string", default: "on" },
    "client-body-buffer-size": { type: "string", default: "64k" },
    "client-body-timeout": { type: "string", default: "60" },
    "max-header-size": { type: "string", default: "16k" },
    "enable-underscores-in-headers": { type: "boolean", default: false },
    "http2-max-concurrent-streams": { type: "string", default: "128" },
    "http2-max-resets-per-second": { type: "string", default: "100" },
    "upstream-connect-timeout": { type: "string", default: "5" },
    "upstream-read-timeout": { type: "string", default: "60" },
    "client-header-timeout": { type: "string", default: "60" },
    "shutdown-grace": { type: "string", default: "30" },
    help: { type: "boolean", short: "h" },
  });
  if (v.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const trustedProxies = v["trusted-proxies"].flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s !== "");
  try {
    parseTrustedProxies(trustedProxies);
  } catch (err) {
    throw new CliUsageError(`--trusted-proxies: ${(err as Error).message}`);
  }
  const bindAddress = v["bind-address"];
  // The data plane's listeners take an IP address (no name lookup).
  if (bindAddress !== undefined && isIP(bindAddress) === 0) {
    throw new CliUsageError(`--bind-address "${bindAddress}" is not an IP address`);
  }
  const ref = (flag: string, value: string | undefined) => {
    if (value === undefined) return undefined;
    try {
      return parseObjectRef(flag, value);
    } catch (err) {
      if (err instanceof ObjectRefError) throw new CliUsageError(err.message);
      throw err;
    }
  };
  const options = {
    ...classOptionsOf(v),
    watchNamespace: v["watch-namespace"],
    publishService: ref("--publish-service", v["publish-service"]),
    defaultSslCertificate: ref("--default-ssl-certificate", v["default-ssl-certificate"]),
    bindAddress,
    httpPort: parsePort("--http-port", v["http-port"]),
    httpsPort: parsePort("--https-port", v["https-port"]),
    workers: integer("--workers", v.workers, 1, 256),
    trustedProxies,
    maxBodySize: size("--max-body-size", v["max-body-size"]),
    shutdownGraceMs: seconds("--shutdown-grace", v["shutdown-grace"]),
    dataPlane: startNativeDataPlane,
    proxy: {
      httpsRedirectPort: parsePort("--https-redirect-port", v["https-redirect-port"], 1),
      connectTimeout: seconds("--upstream-connect-timeout", v["upstream-connect-timeout"]),
      readTimeout: seconds("--upstream-read-timeout", v["upstream-read-timeout"]),
      headersTimeout: seconds("--client-header-timeout", v["client-header-timeout"]),
      requestBufferSize: onOff("--request-buffering", v["request-buffering"]) ? size("--client-body-buffer-size", v["client-body-buffer-size"]) : 0,
      clientBodyTimeout: seconds("--client-body-timeout", v["client-body-timeout"]),
      maxHeaderSize: size("--max-header-size", v["max-header-size"]),
      underscoresInHeaders: v["enable-underscores-in-headers"],
      http2MaxConcurrentStreams: integer("--http2-max-concurrent-streams", v["http2-max-concurrent-streams"], 1, 2 ** 31 - 1),
      http2MaxResetsPerSecond: integer("--http2-max-resets-per-second", v["http2-max-resets-per-second"], 1, 1_000_000),
    },
  };
  const { start } = prepareComponent({ name: "bollard-ingress", values: v, ...(v["bind-address"] === undefined ? {} : { metricsHost: v["bind-address"] }) });
  return start((context) => runIngress(options, context));
};

/** The data plane (@bollard/dataplane, Rust), given the flags' options. */
const startNativeDataPlane: DataPlaneFactory = async (options, listen, logger, registry) => {
  const plane = createDataPlane({
    defaultCertificate: options.defaultCertificate,
    trustedProxies: options.trustedProxies,
    maxBodySize: options.maxBodySize,
    maxHeaderSize: options.maxHeaderSize,
    requestBufferSize: options.requestBufferSize,
    clientBodyTimeout: options.clientBodyTimeout,
    underscoresInHeaders: options.underscoresInHeaders,
    http2MaxConcurrentStreams: options.http2MaxConcurrentStreams,
    connectTimeout: options.connectTimeout,
    readTimeout: options.readTimeout,
    headersTimeout: options.headersTimeout,
    requestTimeout: options.requestTimeout,
    keepAliveTimeout: options.keepAliveTimeout,
    http2MaxResetsPerSecond: options.http2MaxResetsPerSecond,
    upstreamKeepAliveTimeout: options.upstreamKeepAliveTimeout,
    httpsRedirectPort: options.httpsRedirectPort,
    logger,
  });
  registerDataPlaneMetrics(plane, registry);
  const ports = listenDualStack(plane, listen);
  logger.info({ ...ports, dataPlane: "native", threads: listen.workers }, "proxy listening");
  return plane;
};

/**
 * Without --bind-address, all addresses as Node's own listeners bind them: \`::\` (IPv6 and, with the kernel's default
 * net.ipv6.bindv6only=0, IPv4 too), else 0.0.0.0 where the host has no IPv6.
 */
function listenDualStack(plane: DataPlane, listen: Parameters<DataPlaneFactory>[1]) {
  const at = (host: string) => plane.listen({ host, httpPort: listen.httpPort, httpsPort: listen.httpsPort, workers: listen.workers });
  if (listen.host !== undefined) return at(listen.host);
  try {
    return at("::");
  } catch (err) {
    if (!/Address family not supported|Cannot assign requested address/i.test((err as Error).message)) throw err;
    return at("0.0.0.0");
  }
}

function integer(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new CliUsageError(`${flag} "${value}" is not an integer in ${min}..${max}`);
  return n;
}

function onOff(flag: string, value: string): boolean {
  if (value === "on" || value === "true") return true;
  if (value === "off" || value === "false") return false;
  throw new CliUsageError(`${flag} "${value}" is neither on nor off`);
}

function seconds(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n <= 0) throw new CliUsageError(`${flag} "${value}" is not a positive number of seconds`);
  return Math.round(n * 1000);
}

function size(flag: string, value: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(value);
  if (m === null) throw new CliUsageError(`${flag} "${value}" is not a size like 1048576, 512k or 1m`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").toLowerCase() as "" | "k" | "m" | "g"];
  return Number(m[1]) * unit;
}
