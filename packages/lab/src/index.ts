export {
  type ControlPlane,
  type ControlPlaneOptions,
  ControlPlaneStartError,
  freePort,
  startControlPlane,
} from "./control-plane/control-plane.ts";
export { type ControlPlaneBinaries, ControlPlaneBuildError, ensureControlPlaneBinaries } from "./control-plane/binaries.ts";
