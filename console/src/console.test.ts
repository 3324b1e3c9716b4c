import { describe, expect, it } from "vitest";
import { errorText, fieldErrors } from "./api/errors";
import { describeCron, FINAL_RUN_STATES, RETRYABLE_RUN_STATES } from "./cron";
import { FINAL_STATES, gatewayTls, pysparkSnippet } from "./snippet";

describe("errorText", () => {
  it("shows the API's own message", () => {
    const body = { error: { code: "unauthorized", message: "Invalid email or password.", errorType: "x",
      details: { fieldErrors: {} } } };
    expect(errorText(body, 401)).toBe("Invalid email or password.");
  });
  it("gives the field errors one by one, for beside the fields", () => {
    const body = { error: { code: "validation_failed", message: "Invalid request: name: too short",
      details: { fieldErrors: { name: "too short" } } } };
    expect(errorText(body, 422)).toBe("Invalid request: name: too short");
    expect(fieldErrors(body)).toEqual({ name: "too short" });
    expect(fieldErrors(undefined)).toEqual({});
  });
  it("says what happened when there is no error body", () => {
    expect(errorText(undefined)).toMatch(/could not be reached/);
    expect(errorText(null, 502)).toMatch(/HTTP 502/);
    expect(errorText("<html>", 403)).toMatch(/permission/);
  });
});

describe("pysparkSnippet", () => {
  it("connects to a plaintext gateway with the token", () => {
    const snippet = pysparkSnippet("sc://localhost:50051", "abc.def", false);
    expect(snippet).toContain('SparkSession.builder.remote("sc://localhost:50051/;token=abc.def")');
    expect(snippet).toContain("from pyspark.sql import SparkSession");
    expect(snippet).not.toContain("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH");
  });
  it("asks for TLS when the gateway speaks it", () => {
    const snippet = pysparkSnippet("sc://localhost:50051", "abc.def", true);
    expect(snippet).toContain('remote("sc://localhost:50051/;use_ssl=true;token=abc.def")');
    expect(snippet).toContain("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH");
  });
  it("does not double a trailing slash", () => {
    expect(pysparkSnippet("sc://h:1/", "t", false)).toContain('"sc://h:1/;token=t"');
  });
  it("reads the gateway's TLS from the page", () => {
    const page = (content: string | null) => ({
      querySelector: () => (content === null ? null : { getAttribute: () => content }),
    }) as unknown as Pick<Document, "querySelector">;
    expect(gatewayTls(page("true"))).toBe(true);
    expect(gatewayTls(page("false"))).toBe(false);
    expect(gatewayTls(page(null))).toBe(false);
  });
  it("knows the final states", () => {
    expect(FINAL_STATES.has("closed") && FINAL_STATES.has("failed") && !FINAL_STATES.has("active")).toBe(true);
  });
});

describe("describeCron", () => {
  it("says common schedules in plain words", () => {
    expect(describeCron("0 2 * * *")).toBe("Every day at 02:00");
    expect(describeCron("30 9 * * 1-5")).toBe("On Monday to Friday at 09:30");
    expect(describeCron("*/15 * * * *")).toBe("Every 15 minutes");
    expect(describeCron("0 * * * *")).toBe("Every hour, on the hour");
    expect(describeCron("5 * * * sun")).toBe("Every hour at 5 minutes past, on Sunday");
    expect(describeCron("0 0 1 jan,jul *")).toBe("On day 1 of the month at 00:00 in January, July");
    expect(describeCron("@daily")).toBe("Every day at midnight");
  });
  it("has no words for what is not a cron expression", () => {
    expect(describeCron("")).toBeNull();
    expect(describeCron("every day")).toBeNull();
    expect(describeCron("0 2 * *")).toBeNull();
    expect(describeCron("@sometimes")).toBeNull();
    expect(describeCron("x 2 * * *")).toBeNull();
  });
  it("knows which runs are over and which may be retried", () => {
    expect(FINAL_RUN_STATES.has("succeeded") && !FINAL_RUN_STATES.has("running")).toBe(true);
    expect(RETRYABLE_RUN_STATES.has("failed") && !RETRYABLE_RUN_STATES.has("succeeded")).toBe(true);
  });
});
