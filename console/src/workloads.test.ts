import { describe, expect, it } from "vitest";
import { mapFieldErrors, parseObject } from "./fields";
import { ApiFailure } from "./api/client";
import { sameOriginUrl } from "./notebookStates";

describe("sameOriginUrl", () => {
  it("keeps the open URL's path and token on the page's origin", () => {
    expect(sameOriginUrl("https://public.example.com/notebooks/N1/_auth?token=a.b.c", "http://127.0.0.1:8000"))
      .toBe("http://127.0.0.1:8000/notebooks/N1/_auth?token=a.b.c");
  });
  it("accepts a relative URL", () => {
    expect(sameOriginUrl("/notebooks/N1/_auth?token=t", "https://sp.example")).toBe("https://sp.example/notebooks/N1/_auth?token=t");
  });
});

describe("parseObject", () => {
  it("answers the object, or why the text is not one", () => {
    expect(parseObject('{"a": 1}')).toEqual({ value: { a: 1 } });
    expect(parseObject("")).toEqual({ value: {} });
    expect(parseObject("[1]")).toEqual({ problem: "Not a JSON object: write { … } with the settings inside." });
    expect("problem" in parseObject("{a:")).toBe(true);
  });
});

describe("mapFieldErrors", () => {
  it("puts the form's fields beside them and the rest, with its path, beside the JSON editor", () => {
    const failure = new ApiFailure(422, { error: { message: "Invalid", details: { fieldErrors: {
      name: "Too long", "config.sail.driverCores": "Must be at least 1", "config.sail.x": "Unknown" } } } });
    expect(mapFieldErrors(failure, { name: "name" }, "extra")).toEqual({
      name: "Too long", extra: "config.sail.driverCores: Must be at least 1; config.sail.x: Unknown" });
  });
  it("has nothing for a failure without field errors", () => {
    expect(mapFieldErrors(new Error("network"), { name: "name" }, "extra")).toEqual({});
  });
});
