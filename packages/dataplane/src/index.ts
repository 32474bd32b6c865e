export { createDataPlane, type DataPlane, type DataPlaneOptions, type Decision, InvalidSnapshotError } from "./data-plane.ts";
export { registerDataPlaneMetrics } from "./metrics.ts";
export { DataPlaneNotBuiltError, loadNative, type NativeCounters } from "./native.ts";
export { type DataPlaneSnapshot, SNAPSHOT_VERSION, type SnapshotBackend, type SnapshotCertificate, type SnapshotRoute, snapshotFromTable, type TableSnapshot } from "./snapshot.ts";
