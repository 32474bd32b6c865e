export {
  type ControlPlane,
  type ControlPlaneOptions,
  ControlPlaneStartError,
  freePort,
  startControlPlane,
} from "./control-plane/control-plane.ts";
export { type ControlPlaneBinaries, ControlPlaneBuildError, ensureControlPlaneBinaries } from "./control-plane/binaries.ts";
export { execIn, ip, LabCommandError, run, type RunResult } from "./network/exec.ts";
export { createLabNetwork, destroyLabNetwork, type LabHost, type LabNetwork, type LabRouter, LabSetupError, labPrefixV6, newLabId } from "./network/topology.ts";
export {
  CONFIG_NAMESPACE,
  LAB_NODE_ASN,
  LAB_ROOT,
  LAB_ROUTER_ASN,
  type Lab,
  type LabOptions,
  type LabRuntime,
  LAB_RUNTIMES,
  LAB_IMPLEMENTATIONS,
  type LabImplementation,
  type LabState,
  defaultLabRuntime,
  startLab,
} from "./lab/lab.ts";
export { LAB_IP_FAMILIES, type LabIPFamily, labBgpManifest, labPoolManifest } from "./lab/pool.ts";
export { type ContainerSecurity, LabImageMissingError, SERVICE_ACCOUNT_MOUNT, securityFlags } from "./lab/containers.ts";
export { isProcessAlive, warmCompileCache } from "./lab/processes.ts";
export { readLabStates, teardownLab, teardownStrays } from "./lab/teardown.ts";
export { startBackend } from "./lab/backend.ts";
export { runKubeProxy } from "./kube-proxy/run.ts";
export { compileNatRules, renderNftRuleset } from "./kube-proxy/rules.ts";
export { desiredEndpointSlices, type LabPod } from "./endpoints/slices.ts";
export { issueCertificate, type KeyPair } from "./control-plane/certs.ts";
export { type FrrNeighbor, FrrConfigError, type FrrRouter, type FrrRouterOptions, renderFrrConfig, startFrrRouter } from "./router/frr.ts";
export { type BirdRouter, renderBirdConfig, startBirdRouter } from "./router/bird.ts";
export { GOBGP_API, type GobgpRouter, multipathNextHops, renderGobgpConfig, startGobgpRouter } from "./router/gobgp.ts";
export { type LabBgpRouter, ROUTER_DAEMONS, RouterConfigError, type RouterDaemon, type RouterNeighbor, type RouterOptions, type RouterPath } from "./router/router.ts";
