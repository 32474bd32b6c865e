// A real control plane for tests and for people: etcd + kube-apiserver as processes on free ports, as
// controller-runtime's envtest runs them. No kubelet, scheduler or controller-manager: tests create Nodes and
// EndpointSlices themselves.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import YAML from "yaml";
import { issueCertificate, generateRsaKeyPem, type KeyPair } from "./certs.ts";
import { type LabProcess, spawnLabProcess } from "../lab/processes.ts";
import { type ControlPlaneBinaries, ensureControlPlaneBinaries } from "./binaries.ts";

const STOP_GRACE_MS = 10_000;
/** The Service CIDRs, IPv4 first (the cluster's default family), then IPv6 (a /108 is the most an IPv6 range may have). */
export const SERVICE_CIDRS = ["10.96.0.0/12", "fd00:10:96::/108"] as const;

export interface ControlPlaneOptions {
  /** Address kube-apiserver listens on; the lab uses an address its network namespaces can reach. */
  bindAddress?: string;
  /** Extra IPs / DNS names for the serving certificate. */
  extraSANs?: string[];
  /** Where to keep certificates, data and logs; a fresh temporary directory by default (removed on stop). */
  dir?: string;
  /** Where to write the admin kubeconfig; `<dir>/kubeconfig` by default. */
  kubeconfigPath?: string;
  /** Milliseconds to wait for /readyz. */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface ControlPlane {
  readonly dir: string;
  readonly binaries: ControlPlaneBinaries;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly caPem: string;
  readonly etcdUrl: string;
  readonly apiServerPid: number | undefined;
  readonly etcdPid: number | undefined;
  /** Stops kube-apiserver only (etcd keeps the data): to test what happens while the API server is gone. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same address, port and certificates, and waits for /readyz. */
  startApiServer(): Promise<void>;
  restartApiServer(): Promise<void>;
  /** Writes a kubeconfig that authenticates with a bearer token (e.g. a ServiceAccount's, from TokenRequest). */
  writeTokenKubeconfig(path: string, token: string): Promise<void>;
  stop(): Promise<void>;
}

export class ControlPlaneStartError extends Error {
  override name = "ControlPlaneStartError";
  readonly component: string;
  readonly logTail: string;
  constructor(component: string, message: string, logTail: string) {
    super(`${component}: ${message}${logTail ? `\n--- last lines of ${component}'s log ---\n${logTail}` : ""}`);
    this.component = component;
    this.logTail = logTail;
  }
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function tail(path: string, lines = 30): Promise<string> {
  try {
    return (await readFile(path, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function httpsGet(url: string, ca: string, cert?: KeyPair): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, cert: cert?.certPem, key: cert?.keyPem, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, proc: LabProcess, timeoutMs: number): Promise<void> {
  const { child, logPath } = proc;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ControlPlaneStartError(what, `exited (${child.exitCode ?? child.signalCode}) before it was ready`, await tail(logPath));
    }
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new ControlPlaneStartError(what, `not ready after ${timeoutMs} ms`, await tail(logPath));
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? (() => {});
  const binaries = await ensureControlPlaneBinaries();
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "bollard-cp-")));
  await mkdir(join(dir, "etcd"), { recursive: true, mode: 0o700 });
  const bindAddress = options.bindAddress ?? "127.0.0.1";
  const connectHost = bindAddress === "0.0.0.0" ? "127.0.0.1" : bindAddress;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;

  const ca = issueCertificate({ commonName: "bollard-test-ca", usage: "ca", days: 30 });
  const sans = ["127.0.0.1", connectHost, ...(options.extraSANs ?? [])];
  const isIP = (s: string) => /^[\d.]+$/.test(s) || s.includes(":");
  const serving = issueCertificate(
    {
      commonName: "kube-apiserver",
      usage: "server",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", ...sans.filter((s) => !isIP(s))],
      ipAddresses: [...new Set(sans.filter(isIP)), "10.96.0.1"],
    },
    ca,
  );
  const admin = issueCertificate({ commonName: "bollard-admin", organization: "system:masters", usage: "client" }, ca);
  const saKey = generateRsaKeyPem();
  const files = {
    ca: join(dir, "ca.crt"),
    servingCert: join(dir, "apiserver.crt"),
    servingKey: join(dir, "apiserver.key"),
    saKey: join(dir, "sa.key"),
    saPub: join(dir, "sa.pub"),
  };
  await writeFile(files.ca, ca.certPem);
  await writeFile(files.servingCert, serving.certPem);
  await writeFile(files.servingKey, serving.keyPem, { mode: 0o600 });
  await writeFile(files.saKey, saKey.privatePem, { mode: 0o600 });
  await writeFile(files.saPub, saKey.publicPem);

  const etcdPort = await freePort();
  const etcdPeerPort = await freePort();
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const apiPort = await freePort(connectHost);
  const server = `https://${connectHost.includes(":") ? `[${connectHost}]` : connectHost}:${apiPort}`;

  let etcd: LabProcess | undefined;
  let apiServer: LabProcess | undefined;

  const startEtcd = async () => {
    const started = Date.now();
    etcd = spawnLabProcess({
      name: "etcd",
      command: binaries.etcd,
      logDir: dir,
      args: [
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
    });
    const proc = etcd;
    await waitFor(
      "etcd",
      async () => (await fetch(`${etcdUrl}/health`).then((r) => r.json() as Promise<{ health?: string }>)).health === "true",
      proc,
      readyTimeoutMs,
    );
    log(`etcd ${etcdUrl} ready in ${Date.now() - started} ms (pid ${proc.child.pid})`);
  };

  const startApiServer = async () => {
    const started = Date.now();
    apiServer = spawnLabProcess({
      name: "kube-apiserver",
      command: binaries.kubeApiServer,
      logDir: dir,
      args: [
        `--etcd-servers=${etcdUrl}`,
        `--bind-address=${bindAddress}`,
        `--advertise-address=${isIP(connectHost) ? connectHost : "127.0.0.1"}`,
        `--secure-port=${apiPort}`,
        `--cert-dir=${dir}`,
        `--tls-cert-file=${files.servingCert}`,
        `--tls-private-key-file=${files.servingKey}`,
        `--client-ca-file=${files.ca}`,
        "--authorization-mode=RBAC",
        `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
        `--service-account-key-file=${files.saPub}`,
        `--service-account-signing-key-file=${files.saKey}`,
        // IPv4 and IPv6, as a dual-stack cluster serves them: without the second range the API server refuses every
        // IPv6 and RequireDualStack Service before a controller could see it.
        `--service-cluster-ip-range=${SERVICE_CIDRS.join(",")}`,
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
      ],
    });
    const proc = apiServer;
    await waitFor("kube-apiserver", async () => (await httpsGet(`${server}/readyz`, ca.certPem, admin)).status === 200, proc, readyTimeoutMs);
    log(`kube-apiserver ${server} ready in ${Date.now() - started} ms (pid ${proc.child.pid})`);
  };

  const kubeconfigPath = options.kubeconfigPath ?? join(dir, "kubeconfig");
  const kubeconfig = (user: Record<string, string>) =>
    YAML.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "bollard-test",
          cluster: { server, "certificate-authority-data": Buffer.from(ca.certPem).toString("base64") },
        },
      ],
      users: [{ name: "bollard-test", user }],
      contexts: [{ name: "bollard-test", context: { cluster: "bollard-test", user: "bollard-test" } }],
      "current-context": "bollard-test",
    });

  const stop = async () => {
    await apiServer?.stop("SIGTERM", STOP_GRACE_MS);
    await etcd?.stop("SIGTERM", STOP_GRACE_MS);
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    await startEtcd();
    await startApiServer();
    await writeFile(
      kubeconfigPath,
      kubeconfig({
        "client-certificate-data": Buffer.from(admin.certPem).toString("base64"),
        "client-key-data": Buffer.from(admin.keyPem).toString("base64"),
      }),
      { mode: 0o600 },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    dir,
    binaries,
    kubeconfigPath,
    server,
    caPem: ca.certPem,
    etcdUrl,
    get apiServerPid() {
      return apiServer?.child.pid;
    },
    get etcdPid() {
      return etcd?.child.pid;
    },
    stopApiServer: async () => apiServer?.stop("SIGTERM", STOP_GRACE_MS),
    startApiServer,
    async restartApiServer() {
      await apiServer?.stop("SIGTERM", STOP_GRACE_MS);
      await startApiServer();
    },
    async writeTokenKubeconfig(path, token) {
      await writeFile(path, kubeconfig({ token }), { mode: 0o600 });
    },
    stop,
  };
}
