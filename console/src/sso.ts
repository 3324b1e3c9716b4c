/** SSO sign-in in the console (OIDC through the server, RFC 8252's handoff adapted to a same-origin page):
 * the console starts startSsoLogin with its page `/signin/sso`, a PKCE challenge and a state, keeping the
 * verifier and state in this tab's sessionStorage; the server ends the sign-in there with a one-time code in the
 * URL's fragment (never sent to a server, so it is in no access log), which only this tab's verifier redeems
 * (exchangeSsoCode). An answer this tab did not start (a forged or replayed link) is refused before any call. */

export const SSO_PAGE = "/signin/sso";
const KEY = "sailplane.sso";

interface Pending {
  verifier: string;
  state: string;
  email: string;
  next: string | null;
}

export type SsoReturn =
  | { kind: "code"; code: string; verifier: string; email: string; next: string | null }
  | { kind: "error"; message: string };

function base64url(bytes: Uint8Array): string {
  let text = "";
  bytes.forEach((b) => { text += String.fromCharCode(b); });
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(size: number): string {
  const bytes = new Uint8Array(size);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

/** SHA-256 in plain JavaScript: crypto.subtle exists only in secure contexts, and a server on a LAN may be
 * reached over plain HTTP. */
export function sha256(message: Uint8Array): Uint8Array {
  const k = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2]);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
    0x5be0cd19]);
  const length = Math.ceil((message.length + 9) / 64) * 64;
  const data = new Uint8Array(length);
  data.set(message);
  data[message.length] = 0x80;
  const view = new DataView(data.buffer);
  view.setUint32(length - 4, message.length * 8);
  view.setUint32(length - 8, Math.floor(message.length / 0x20000000));
  const w = new Uint32Array(64);
  const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));
  for (let offset = 0; offset < length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((word, i) => outView.setUint32(i * 4, word));
  return out;
}

/** The PKCE S256 challenge of a verifier (RFC 7636). */
export function s256(verifier: string): string {
  return base64url(sha256(new TextEncoder().encode(verifier)));
}

/** Where the browser goes to sign in with the identity provider of `email`'s domain; remembers this tab's
 * verifier and state for the way back. */
export function ssoStartUrl(email: string, next: string | null): string {
  const pending: Pending = { verifier: random(48), state: random(24), email, next };
  sessionStorage.setItem(KEY, JSON.stringify(pending));
  const query = new URLSearchParams({ loginHint: email, redirectUri: SSO_PAGE,
    codeChallenge: s256(pending.verifier), state: pending.state });
  return `/api/v1/auth/sso/discover/authorize?${query}`;
}

/** The answer in the page's fragment, checked against what this tab started; the pending sign-in is spent
 * either way, so an answer is taken once. */
export function takeSsoReturn(fragment: string): SsoReturn {
  const answer = new URLSearchParams(fragment.replace(/^#/, ""));
  let pending: Pending | null = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as Pending | null;
  } catch {
    pending = null;
  }
  sessionStorage.removeItem(KEY);
  if (!pending) return { kind: "error", message: "No single sign-on was started in this tab; start again." };
  if (answer.get("state") !== pending.state) {
    return { kind: "error", message: "This sign-in answer is not the one this tab asked for; start again." };
  }
  const error = answer.get("error");
  if (error) return { kind: "error", message: answer.get("error_description") || error };
  const code = answer.get("code");
  if (!code) return { kind: "error", message: "The sign-in answer has no code; start again." };
  return { kind: "code", code, verifier: pending.verifier, email: pending.email, next: pending.next };
}
