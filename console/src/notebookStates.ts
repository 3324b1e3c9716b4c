/** Notebook states (the API's NotebookView.status) as the console uses them. */

/** States a notebook leaves by itself: its page follows them closely. */
export const CHANGING = new Set(["starting", "stopping"]);
/** States in which `open` answers a URL (the marimo server is up). */
export const OPENABLE = new Set(["running", "idle", "detached"]);
/** States from which it can be started. */
export const STARTABLE = new Set(["stopped", "failed"]);

/** The open URL on this page's origin: the console and the notebook proxy are one server, and the proxy's cookie
 * (SameSite=Lax, scoped to the notebook's path) reaches it only when the frame is same-site. The API answers the
 * URL on its configured public URL, which a browser may reach under another name. */
export function sameOriginUrl(url: string, origin: string): string {
  const parsed = new URL(url, origin);
  return `${origin}${parsed.pathname}${parsed.search}`;
}
