// First: it must run before any module loads prom-client.
import "./health/prom-client-slim.ts";

export {
  AddressParseError,
  compareIP,
  formatIP,
  type IPAddress,
  type IPFamily,
  MAX_IPV4,
  MAX_IPV6,
  nextIP,
  parseIP,
  prevIP,
} from "./address/ip.ts";
export {
  type AddressRange,
  type CIDR,
  cidrToRange,
  formatRange,
  iterateRange,
  parseAddressRange,
  parseCIDR,
  rangeContains,
  rangeSize,
  rangesOverlap,
} from "./address/range.ts";
export {
  type AuthorizationResult,
  createRequestAuthorizer,
  type RequestAuthorizer,
  type RequestAuthorizerOptions,
} from "./health/authorize.ts";
export {
  createMetricsRegistry,
  type HealthServer,
  type HealthServerOptions,
  type MetricsSource,
  type SecureMetrics,
  startHealthServer,
} from "./health/server.ts";
export { KubeConfigError, createKubeConfig } from "./kube/config.ts";
export {
  COMPONENT_TYPE_LABEL,
  type ConfigurationCondition,
  type ConfigurationReport,
  type ConfigurationResult,
  type ConfigurationStateWriter,
  type ConfigurationStateWriterOptions,
  configurationReport,
  createConfigurationStateWriter,
  NODE_NAME_LABEL,
} from "./kube/configuration-state.ts";
export {
  type EventRecorder,
  type EventRecorderOptions,
  type EventType,
  type InvolvedObject,
  createEventRecorder,
} from "./kube/events.ts";
export {
  createInformer,
  type Informer,
  type InformerEvent,
  type InformerOptions,
  InformerStoppedError,
  objectKey,
  stripManagedFields,
  waitForSync,
} from "./kube/informer.ts";
export {
  type ApiObject,
  type ResourceLocation,
  ResourcePathError,
  type ResourceType,
  resourcePath,
  resources,
  resourceType,
  typedResource,
} from "./kube/resources.ts";
export { type LeaderElection, type LeaderElectionOptions, runLeaderElection } from "./kube/leader.ts";
export { isGone, isStatus, KubeApiError, type KubeRequest, KubeRequestError, kubeRequest } from "./kube/request.ts";
export {
  type Labels,
  type LabelSelector,
  parseLabelSelector,
  type SelectorOperator,
  type SelectorProblem,
  type SelectorRequirement,
  selectorMatches,
} from "./labels/selector.ts";
export { type Backoff, type BackoffOptions, createBackoff, sleep } from "./lifecycle/backoff.ts";
export type { ComponentContext, RunningComponent } from "./lifecycle/component.ts";
export { onShutdown, ShutdownSignal } from "./lifecycle/shutdown.ts";
export { createWorkQueue, type WorkQueue, type WorkQueueOptions } from "./lifecycle/work-queue.ts";
export { createLogger, type Logger, LogLevelError, type LoggerOptions } from "./log/logger.ts";
export {
  AddressOverlapError,
  ConfigError,
  DuplicatePoolError,
  InvalidAddressError,
  InvalidPoolFieldError,
  InvalidSelectorError,
} from "./pools/errors.ts";
export { loadPools, type Pool, type PoolRange, type PoolsResult, poolContaining, type ServiceAllocation } from "./pools/pools.ts";
export { type ManifestFile, ManifestError, parseManifests, readManifests } from "./manifests/read.ts";
export { seededRandom } from "./random/seeded.ts";
export { generateSelfSignedCertificate, type PemPair } from "./tls/self-signed.ts";
