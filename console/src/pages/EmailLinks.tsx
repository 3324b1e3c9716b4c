/** The pages the server's emails link to (public: no sign-in needed): `/verify-email?token=…` confirms an
 * address, `/reset-password?token=…` sets a new password. The token leaves the address bar (and so the
 * browser's history) as soon as the page has read it; both links work once. */
import { useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import { useAuth } from "../auth";

/** The link's token, read once per page load and removed from the address bar (React's development double
 * effects see the same value). */
const taken = new Map<string, string | null>();
function takeToken(path: string): string | null {
  if (!taken.has(path)) {
    const token = new URLSearchParams(window.location.search).get("token");
    taken.set(path, token);
    if (token) window.history.replaceState(null, "", path);
  }
  return taken.get(path) ?? null;
}

let verifying: Promise<{ email: string }> | null = null;

export function VerifyEmail() {
  const { auth } = useAuth();
  const [state, setState] = useState<{ email?: string; error?: string } | null>(null);

  useEffect(() => {
    const token = takeToken("/verify-email");
    if (!token) {
      setState({ error: "This page needs the link from the verification email." });
      return;
    }
    verifying ??= call(api.POST("/api/v1/auth/email/verify", { body: { token } }));
    verifying.then((answer) => setState({ email: answer.email }), (e: Error) => setState({ error: e.message }));
  }, []);

  return (
    <div className="signin">
      <h1>Verify your email address</h1>
      {state === null && <p className="muted" role="status">Checking the link…</p>}
      {state?.email && <p role="status">{state.email} is verified. Thank you.</p>}
      {state?.error && <p className="error" role="alert">{state.error}</p>}
      <p>{auth ? <Link to="/teams">Go to the console</Link> : <Link to="/signin">Sign in</Link>}</p>
    </div>
  );
}

export function ResetPassword() {
  const [token] = useState(() => takeToken("/reset-password"));
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<string | null>(token ? null : "This page needs the link from the password reset email.");
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!token) return;
    if (password !== repeat) {
      setError("The two new passwords differ.");
      return;
    }
    setBusy(true);
    setError(null);
    call(api.POST("/api/v1/auth/password/reset", { body: { token, newPassword: password } })).then(
      () => setDone(true), (err: Error) => setError(err.message)).finally(() => setBusy(false));
  };

  return (
    <div className="signin">
      <h1>Choose a new password</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {done ? (
        <p role="status">Your password is changed and every earlier sign-in has ended. <Link to="/signin">Sign in</Link></p>
      ) : token && (
        <form onSubmit={submit} aria-label="Reset password">
          <label>New password<input type="password" name="newPassword" autoComplete="new-password" required autoFocus
            value={password} onChange={(e) => setPassword(e.target.value)} /></label>
          <label>Repeat new password<input type="password" name="repeatPassword" autoComplete="new-password" required
            value={repeat} onChange={(e) => setRepeat(e.target.value)} /></label>
          <button type="submit" disabled={busy}>{busy ? "Saving…" : "Set password"}</button>
        </form>
      )}
    </div>
  );
}
