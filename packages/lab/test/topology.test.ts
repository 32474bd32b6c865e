// The lab's addresses are built from its id; they must be in the canonical text form the kernel and our own
// formatters print, or tests that compare addresses as strings fail for some ids and not others.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLabNetwork, labPrefixV6, LabSetupError } from "../src/network/topology.ts";

describe("lab addressing", () => {
  const cases: Array<[id: string, prefix: string]> = [
    ["1234", "fd00:b011:1234::"],
    ["01ae", "fd00:b011:1ae::"],
    ["000f", "fd00:b011:f::"],
    ["0000", "fd00:b011::"],
    ["ffff", "fd00:b011:ffff::"],
  ];
  for (const [id, prefix] of cases) {
    it(`lab ${id} uses ${prefix}/64`, () => {
      assert.equal(labPrefixV6(id), prefix);
    });
  }

  it("refuses an id that is not four hex digits before touching the network", async () => {
    for (const id of ["12345", "xyz1", "01AE", "", "../x"]) {
      await assert.rejects(createLabNetwork({ id }), (err: unknown) => err instanceof LabSetupError && /four lowercase hex digits/.test(err.message), id);
    }
  });
});
