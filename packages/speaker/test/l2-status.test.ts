// Which other nodes' ServiceL2Status objects the announcer of a Service removes, and which other nodes'
// ServiceBGPStatus objects every speaker removes: tables of cases.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { orphanedBgpStatuses, orphanedL2Statuses, type ServiceL2Status } from "../src/shell/l2-status.ts";

const object = (uid: string, node: string, service = "default/web", written = true): ServiceL2Status => {
  const [namespace, name] = service.split("/") as [string, string];
  return {
    metadata: {
      name: `l2-${uid}`,
      uid,
      labels: { "metallb.io/node": node, "metallb.io/service-name": name, "metallb.io/service-namespace": namespace },
    },
    ...(written ? { status: { node, serviceName: name, serviceNamespace: namespace, interfaces: [{ name: "eth0" }] } } : {}),
  };
};

const objects = [
  object("mine", "node1"),
  object("dead-web", "node2"),
  object("dead-db", "node2", "default/db"),
  object("dead-unwritten", "node3", "default/web", false),
  object("live-web", "node4"),
  object("rewritten", "node5"),
];

const cases: Array<[string, { live: string[]; announced: string[]; leftBehind: string[] }, string[]]> = [
  ["nothing left behind: nothing removed", { live: ["node1"], announced: ["default/web"], leftBehind: [] }, []],
  [
    "objects of dead nodes for the announced Service, status written or not",
    { live: ["node1", "node4"], announced: ["default/web"], leftBehind: ["dead-web", "dead-db", "dead-unwritten"] },
    ["dead-web", "dead-unwritten"],
  ],
  ["never this node's own", { live: [], announced: ["default/web"], leftBehind: ["mine"] }, []],
  ["never a live node's", { live: ["node1", "node4"], announced: ["default/web"], leftBehind: ["live-web"] }, []],
  ["only for Services this node announces", { live: ["node1"], announced: ["default/db"], leftBehind: ["dead-web", "dead-db"] }, ["dead-db"]],
  [
    "not one written after its node was counted dead (a partition: the node is alive after all)",
    { live: ["node1"], announced: ["default/web"], leftBehind: ["dead-web"] },
    ["dead-web"],
  ],
];

describe("orphanedL2Statuses", () => {
  for (const [what, context, expected] of cases) {
    it(what, () => {
      const result = orphanedL2Statuses(objects, {
        self: "node1",
        live: new Set(context.live),
        announced: new Set(context.announced),
        leftBehind: new Set(context.leftBehind),
      });
      assert.deepEqual(result.map((o) => o.metadata.uid), expected);
    });
  }
});

const bgpCases: Array<[string, { nodes: string[]; live: string[] | null; leftBehind: string[] }, string[]]> = [
  ["every Node present and live: nothing removed", { nodes: ["node1", "node2", "node3", "node4", "node5"], live: ["node1", "node2", "node3", "node4", "node5"], leftBehind: ["dead-web"] }, []],
  ["a deleted Node's objects, whatever the membership says (even before converging)", { nodes: ["node1", "node4", "node5"], live: null, leftBehind: [] }, ["dead-web", "dead-db", "dead-unwritten"]],
  ["never this node's own, even with its Node gone", { nodes: [], live: null, leftBehind: ["mine"] }, ["dead-web", "dead-db", "dead-unwritten", "live-web", "rewritten"]],
  ["a dead node's objects left behind, for every Service", { nodes: ["node1", "node2", "node3", "node4", "node5"], live: ["node1", "node4", "node5"], leftBehind: ["dead-web", "dead-db"] }, ["dead-web", "dead-db"]],
  ["not before this node has converged (no view of the dead yet)", { nodes: ["node1", "node2", "node3", "node4", "node5"], live: null, leftBehind: ["dead-web", "dead-db"] }, []],
  ["not one written while its node was counted dead (a partition)", { nodes: ["node1", "node2", "node3", "node4", "node5"], live: ["node1"], leftBehind: [] }, []],
  ["never a live node's", { nodes: ["node1", "node2", "node3", "node4", "node5"], live: ["node1", "node4"], leftBehind: ["live-web"] }, []],
];

describe("orphanedBgpStatuses", () => {
  for (const [what, context, expected] of bgpCases) {
    it(what, () => {
      const result = orphanedBgpStatuses(objects, {
        self: "node1",
        nodes: new Set(context.nodes),
        live: context.live === null ? null : new Set(context.live),
        leftBehind: new Set(context.leftBehind),
      });
      assert.deepEqual(result.map((o) => o.metadata.uid), expected);
    });
  }
});
