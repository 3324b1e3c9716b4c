/** The typed API client: openapi-fetch over the types generated from our OpenAPI document (src/api/schema.d.ts). */
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";
import { errorText, fieldErrors } from "./errors";

const STORAGE_KEY = "sailplane.auth";

export interface Auth {
  token: string;
  organizationId: string | null;
  email: string;
}

export function loadAuth(): Auth | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as Auth) : null;
  } catch {
    return null;
  }
}

export function saveAuth(auth: Auth | null): void {
  if (auth) localStorage.setItem(STORAGE_KEY, JSON.stringify(auth));
  else localStorage.removeItem(STORAGE_KEY);
}

let current: Auth | null = loadAuth();
let onUnauthorized: () => void = () => {};

export function setAuth(auth: Auth | null): void {
  current = auth;
  saveAuth(auth);
}

export function whenUnauthorized(callback: () => void): void {
  onUnauthorized = callback;
}

const authMiddleware: Middleware = {
  onRequest({ request }) {
    if (current?.token && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${current.token}`);
    }
    if (current?.organizationId && !request.headers.has("LakeSail-Organization-Id")) {
      request.headers.set("LakeSail-Organization-Id", current.organizationId);
    }
    return request;
  },
  onResponse({ response, request }) {
    if (response.status === 401 && request.headers.has("Authorization")) onUnauthorized();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: "" })  // paths in the document carry /api/v1;
api.use(authMiddleware);

/** A failed call as an Error whose message is the API's own, in plain words; `fields` = its problems per field
 * (`details.fieldErrors`, keyed by the body's field path such as `cronExpression` or `config.python.source`). */
export class ApiFailure extends Error {
  public readonly fields: Record<string, string>;
  constructor(public readonly status: number | undefined, body: unknown) {
    super(errorText(body, status));
    this.fields = fieldErrors(body);
  }
}

/** Unwrap an openapi-fetch answer: the data, or an ApiFailure with the API's message. */
export async function call<T>(
  promise: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result;
  try {
    result = await promise;
  } catch {
    throw new ApiFailure(undefined, null);
  }
  if (result.error !== undefined || !result.response.ok) throw new ApiFailure(result.response.status, result.error);
  return result.data as T;
}
