import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type LabelSelector, parseLabelSelector, selectorMatches } from "../src/index.ts";

describe("parseLabelSelector", () => {
  const valid: Array<[name: string, raw: unknown, selector: LabelSelector]> = [
    ["empty", {}, { matchLabels: {}, matchExpressions: [] }],
    ["null fields", { matchLabels: null, matchExpressions: null }, { matchLabels: {}, matchExpressions: [] }],
    ["prefixed key, empty value", { matchLabels: { "example.com/zone": "" } }, { matchLabels: { "example.com/zone": "" }, matchExpressions: [] }],
    [
      "every operator",
      {
        matchExpressions: [
          { key: "a", operator: "In", values: ["x"] },
          { key: "b", operator: "NotIn", values: ["y", "z"] },
          { key: "c", operator: "Exists" },
          { key: "d", operator: "DoesNotExist", values: null },
        ],
      },
      {
        matchLabels: {},
        matchExpressions: [
          { key: "a", operator: "In", values: ["x"] },
          { key: "b", operator: "NotIn", values: ["y", "z"] },
          { key: "c", operator: "Exists", values: [] },
          { key: "d", operator: "DoesNotExist", values: [] },
        ],
      },
    ],
  ];
  for (const [name, raw, selector] of valid) it(`accepts ${name}`, () => assert.deepEqual(parseLabelSelector(raw), { selector }));

  const invalid: Array<[name: string, raw: unknown, problems: Array<[path: string, message: RegExp]>]> = [
    ["a list", [], [["", /a selector is an object/]]],
    ["matchLabels not a map", { matchLabels: ["a"] }, [["matchLabels", /map of label keys/]]],
    ["a bad key", { matchLabels: { "-a": "x" } }, [['matchLabels["-a"]', /label key "-a" is invalid/]]],
    ["a bad key prefix", { matchLabels: { "Ex_ample/a": "x" } }, [['matchLabels["Ex_ample/a"]', /invalid prefix/]]],
    ["a bad value", { matchLabels: { a: "x y" } }, [['matchLabels["a"]', /label value "x y" is invalid/]]],
    ["a value too long", { matchLabels: { a: "x".repeat(64) } }, [['matchLabels["a"]', /at most 63/]]],
    ["an unknown operator", { matchExpressions: [{ key: "a", operator: "in", values: ["x"] }] }, [["matchExpressions[0].operator", /"in" is not one of/]]],
    ["In without values", { matchExpressions: [{ key: "a", operator: "In" }] }, [["matchExpressions[0].values", /needs at least one value/]]],
    ["Exists with values", { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] }, [["matchExpressions[0].values", /takes no values/]]],
    ["no key", { matchExpressions: [{ operator: "Exists" }] }, [["matchExpressions[0].key", /key is required/]]],
    ["an unknown field", { matchLabel: { a: "x" } }, [["matchLabel", /unknown selector field/]]],
    [
      "every problem at once",
      { matchLabels: { a: 1 }, matchExpressions: [{ key: "b", operator: "NotIn" }] },
      [
        ['matchLabels["a"]', /label value 1 is not a string/],
        ["matchExpressions[0].values", /NotIn needs at least one value/],
      ],
    ],
  ];
  for (const [name, raw, expected] of invalid) {
    it(`refuses ${name}`, () => {
      const result = parseLabelSelector(raw);
      assert.ok("problems" in result, "refused");
      assert.deepEqual(
        result.problems.map((p) => p.path),
        expected.map(([path]) => path),
      );
      for (const [i, problem] of result.problems.entries()) assert.match(problem.message, (expected[i] as [string, RegExp])[1]);
    });
  }
});

describe("selectorMatches", () => {
  const labels = { zone: "a", role: "edge", empty: "" };
  const cases: Array<[raw: unknown, matches: boolean]> = [
    [{}, true],
    [{ matchLabels: { zone: "a" } }, true],
    [{ matchLabels: { zone: "b" } }, false],
    [{ matchLabels: { zone: "a", role: "core" } }, false],
    [{ matchLabels: { empty: "" } }, true],
    [{ matchLabels: { missing: "" } }, false],
    [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a", "b"] }] }, true],
    [{ matchExpressions: [{ key: "zone", operator: "In", values: ["b"] }] }, false],
    [{ matchExpressions: [{ key: "missing", operator: "In", values: ["a"] }] }, false],
    [{ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, false],
    [{ matchExpressions: [{ key: "missing", operator: "NotIn", values: ["a"] }] }, true],
    [{ matchExpressions: [{ key: "empty", operator: "Exists" }] }, true],
    [{ matchExpressions: [{ key: "missing", operator: "Exists" }] }, false],
    [{ matchExpressions: [{ key: "missing", operator: "DoesNotExist" }] }, true],
    [{ matchExpressions: [{ key: "zone", operator: "DoesNotExist" }] }, false],
    [{ matchLabels: { zone: "a" }, matchExpressions: [{ key: "role", operator: "NotIn", values: ["edge"] }] }, false],
  ];
  for (const [raw, matches] of cases) {
    it(`${JSON.stringify(raw)} ${matches ? "matches" : "does not match"}`, () => {
      const result = parseLabelSelector(raw);
      assert.ok("selector" in result, JSON.stringify(result));
      assert.equal(selectorMatches(result.selector, labels), matches);
    });
  }
  it("does not see inherited properties as labels", () => {
    const result = parseLabelSelector({ matchExpressions: [{ key: "toString", operator: "Exists" }] });
    assert.ok("selector" in result);
    assert.equal(selectorMatches(result.selector, {}), false);
  });
});
