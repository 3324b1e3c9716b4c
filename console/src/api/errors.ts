/** The API's one error shape (`{"error": {code, message, errorType, details}}`) in plain words for a person. */

export interface ApiErrorBody {
  error?: {
    code?: string;
    message?: string;
    errorType?: string;
    details?: { fieldErrors?: Record<string, string>; retryable?: boolean };
  };
}

/** The API's problem per field (`{"name": "..."}`), to show beside the form's fields. */
export function fieldErrors(body: unknown): Record<string, string> {
  return (body as ApiErrorBody | null | undefined)?.error?.details?.fieldErrors ?? {};
}

/** What to show when a call failed: the API's own message (it already names the fields a validation failure is
 * about; fieldErrors() gives them one by one, for beside the fields), else a sentence for the status. */
export function errorText(body: unknown, status?: number): string {
  const message = (body as ApiErrorBody | null | undefined)?.error?.message;
  if (message) return message;
  if (status === undefined) return "The server could not be reached. Check your connection and try again.";
  if (status === 401) return "Your sign-in has expired. Please sign in again.";
  if (status === 403) return "You do not have permission to do this.";
  if (status === 404) return "Not found.";
  if (status >= 500) return `The server had a problem (HTTP ${status}). Try again in a moment.`;
  return `The request failed (HTTP ${status}).`;
}
