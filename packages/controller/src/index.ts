export { type Allocator, createAllocator, poolSize } from "./allocator/allocator.ts";
export { type Plan, planAllocations, type ServiceState } from "./allocator/plan.ts";
export type {
  Allocation,
  AllocationFailure,
  FailureReason,
  IPFamilyPolicy,
  PoolUsage,
  ServiceOutcome,
  ServicePort,
  ServiceRequest,
} from "./allocator/types.ts";
export { type ExplainedService, explainAllocation } from "./explain/allocation.ts";
export {
  ANNOTATION_ADDRESS_POOL,
  ANNOTATION_ALLOCATED_FROM_POOL,
  ANNOTATION_ALLOW_SHARED_IP,
  ANNOTATION_LOAD_BALANCER_IPS,
  currentIPs,
  isHandledLoadBalancer,
  type ServiceObject,
  serviceKey,
  serviceRequest,
} from "./service/request.ts";
export { type Controller, type ControllerOptions, leaseName, runController } from "./reconciler/controller.ts";
