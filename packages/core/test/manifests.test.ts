import assert from "node:assert/strict";
import { relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ManifestError, parseManifests, readManifests } from "../src/index.ts";

const fixtures = fileURLToPath(new URL("./fixtures/manifests/", import.meta.url));
const at = (path: string) => `${fixtures}${path}`;

describe("parseManifests", () => {
  const cases: Array<{ name: string; text: string; objects?: unknown[]; error?: RegExp }> = [
    { name: "one document", text: "kind: Service\nmetadata: {name: a}\n", objects: [{ kind: "Service", metadata: { name: "a" } }] },
    { name: "documents in order", text: "kind: A\n---\nkind: B\n---\nkind: C\n", objects: [{ kind: "A" }, { kind: "B" }, { kind: "C" }] },
    { name: "empty documents are skipped", text: "---\n---\nkind: A\n---\n# only a comment\n---\n", objects: [{ kind: "A" }] },
    { name: "empty text", text: "", objects: [] },
    { name: "JSON", text: '{"kind": "Service", "spec": {"ports": [{"port": 80}]}}', objects: [{ kind: "Service", spec: { ports: [{ port: 80 }] } }] },
    {
      name: "a List is replaced by its items",
      text: "kind: A\n---\nkind: List\nitems: [{kind: B}, {kind: C}]\n---\nkind: D\n",
      objects: [{ kind: "A" }, { kind: "B" }, { kind: "C" }, { kind: "D" }],
    },
    { name: "any *List kind", text: "kind: ServiceList\nitems: [{kind: Service}]\n", objects: [{ kind: "Service" }] },
    { name: "Lists inside Lists", text: "kind: List\nitems: [{kind: List, items: [{kind: A}]}, {kind: B}]\n", objects: [{ kind: "A" }, { kind: "B" }] },
    {
      name: "items of a typed list without kind get the list's kind and apiVersion",
      text: "apiVersion: discovery.k8s.io/v1\nkind: EndpointSliceList\nitems: [{metadata: {name: a}}, {kind: Other, apiVersion: x/v1}]\n",
      objects: [
        { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "a" } },
        { kind: "Other", apiVersion: "x/v1" },
      ],
    },
    { name: "items of a plain List keep what they have", text: "apiVersion: v1\nkind: List\nitems: [{metadata: {name: a}}]\n", objects: [{ metadata: { name: "a" } }] },
    { name: "a *List kind without items is an object", text: "kind: WatchList\n", objects: [{ kind: "WatchList" }] },
    { name: "bad YAML names the source and the document", text: "kind: A\n---\nkind: [B\n", error: /^in\.yaml: document 2: / },
    { name: "bad JSON", text: '{"kind": ', error: /^in\.yaml: document 1: / },
  ];
  for (const c of cases) {
    it(c.name, () => {
      if (c.error === undefined) {
        assert.deepEqual(parseManifests(c.text, "in.yaml"), c.objects);
        return;
      }
      assert.throws(
        () => parseManifests(c.text, "in.yaml"),
        (err: unknown) => err instanceof ManifestError && err.source === "in.yaml" && c.error?.test(err.message) === true,
      );
    });
  }
});

describe("readManifests", () => {
  const cases: Array<{ name: string; paths: string[]; files?: Array<[path: string, names: string[]]>; error?: RegExp }> = [
    {
      name: "a directory: walked recursively, sorted, only .json/.yaml/.yml",
      paths: ["tree"],
      files: [
        ["tree/a.json", ["a"]],
        ["tree/b.yaml", ["b"]],
        ["tree/sub/c.yml", ["c"]],
      ],
    },
    { name: "a file given is read whatever its name", paths: ["given.txt"], files: [["given.txt", ["given"]]] },
    {
      name: "paths in the order given",
      paths: ["tree/sub", "given.txt", "tree/b.yaml"],
      files: [
        ["tree/sub/c.yml", ["c"]],
        ["given.txt", ["given"]],
        ["tree/b.yaml", ["b"]],
      ],
    },
    { name: "a directory without manifests", paths: ["tree/empty"], files: [] },
    { name: "a missing path is named", paths: ["tree", "missing.yaml"], error: /missing\.yaml: ENOENT/ },
    { name: "every path is checked before a file is parsed", paths: ["bad.json", "missing.yaml"], error: /missing\.yaml: ENOENT/ },
    { name: "a bad file is named, with the document", paths: ["tree", "bad.json"], error: /bad\.json: document 1: / },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const read = readManifests(c.paths.map(at));
      if (c.error !== undefined) {
        await assert.rejects(read, (err: unknown) => err instanceof ManifestError && c.error?.test(err.message) === true);
        return;
      }
      const files = (await read).map(({ path, objects }) => [
        relative(fixtures, path),
        objects.map((o) => (o as { metadata: { name: string } }).metadata.name),
      ]);
      assert.deepEqual(files, c.files);
    });
  }
});
