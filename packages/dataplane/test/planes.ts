// The data plane the proxy suite (test/proxy/) runs against: the native one, started in this process with the
// options a test gives. `eachPlane` names the plane in each `describe`, so a report says what was tested.
import { describe } from "node:test";
import { generateDefaultCertificate, type RouteTable } from "@bollard/ingress";
import { createDataPlane, type DataPlaneOptions } from "../src/index.ts";

export type PlaneKind = "native";

/** The plane's options (its limits and timeouts). */
export type PlaneOptions = Partial<Omit<DataPlaneOptions, "defaultCertificate">>;

export interface RunningPlane {
  kind: PlaneKind;
  httpPort: number;
  /** null unless started with `https: true` */
  httpsPort: number | null;
  setTable(table: RouteTable): void;
  shutdown(deadlineMs: number): Promise<void>;
  /** responses the plane counted by status class (`2` → 2xx) */
  responses(statusClass: 1 | 2 | 3 | 4 | 5): number;
  /** requests tried again on another endpoint after a failed connect */
  retries(): number;
  /** requests whose client went away before the answer ended (499, as nginx logs them) */
  clientGone(): number;
}

export interface PlaneFactory {
  kind: PlaneKind;
  start(options?: PlaneOptions, listen?: { https?: boolean }): Promise<RunningPlane>;
}

/** the generated certificate the plane serves when SNI matches nothing */
export const defaultCertificate = generateDefaultCertificate();

const native: PlaneFactory = {
  kind: "native",
  async start(options = {}, listen = {}) {
    const plane = createDataPlane({ defaultCertificate, ...options });
    const ports = plane.listen({ host: "127.0.0.1", httpPort: 0, httpsPort: listen.https ? 0 : null, workers: 2 });
    const classes = ["responses1xx", "responses2xx", "responses3xx", "responses4xx", "responses5xx"] as const;
    return {
      kind: "native",
      ...ports,
      setTable: (table) => plane.setTable(table),
      shutdown: (ms) => plane.shutdown(ms),
      responses: (c) => plane.counters()[classes[c - 1] as (typeof classes)[number]],
      retries: () => plane.counters().upstreamRetries,
      clientGone: () => plane.counters().clientGone,
    };
  },
};

/** `describe("[native] name")` with the plane to start. */
export function eachPlane(name: string, body: (plane: PlaneFactory) => void): void {
  describe(`[${native.kind}] ${name}`, () => body(native));
}
