import { describe, expect, it } from "vitest";
import { lineDiff, settingsText } from "./jobDiff";

describe("lineDiff", () => {
  it("keeps common lines and marks the rest removed or added, in order", () => {
    expect(lineDiff(["a", "b", "c"], ["a", "x", "c", "d"])).toEqual([
      { kind: "same", text: "a" }, { kind: "removed", text: "b" }, { kind: "added", text: "x" },
      { kind: "same", text: "c" }, { kind: "added", text: "d" }]);
  });
  it("is all same for equal inputs and all added from nothing", () => {
    expect(lineDiff(["a"], ["a"])).toEqual([{ kind: "same", text: "a" }]);
    expect(lineDiff([], ["a"])).toEqual([{ kind: "added", text: "a" }]);
  });
});

describe("settingsText", () => {
  it("leaves out bookkeeping and nulls, with keys sorted so key order never shows as a change", () => {
    const one = settingsText({ version: 1, createdAt: "x", cronExpression: "0 2 * * *", config: { sql: { source: "S" } },
      description: null });
    const two = settingsText({ config: { sql: { source: "S" } }, cronExpression: "0 2 * * *", version: 2 });
    expect(one).toEqual(two);
    expect(one.join("\n")).not.toContain("version");
  });
});
