/** Sign-in: password (then the MFA code when the API asks for one), or a one-time code sent by email. */
import { useState, type FormEvent } from "react";
import { Navigate, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import { useAuth } from "../auth";

type Step =
  | { kind: "password" }
  | { kind: "mfa"; challengeToken: string }
  | { kind: "code-sent" };

export function SignIn() {
  const { auth, signIn } = useAuth();
  const [params] = useSearchParams();
  const [step, setStep] = useState<Step>({ kind: "password" });
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const next = params.get("next");
  if (auth) return <Navigate to={next && next.startsWith("/") && !next.startsWith("//") ? next : "/teams"} replace />;

  async function run(action: () => Promise<void>) {
    setError(null);
    setBusy(true);
    try {
      await action();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  function finish(answer: { token?: string; challengeToken?: string }) {
    if (answer.token) return signIn(answer.token, email);
    if (answer.challengeToken) {
      setCode("");
      setStep({ kind: "mfa", challengeToken: answer.challengeToken });
    }
    return Promise.resolve();
  }

  const onPassword = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => finish(await call(api.POST("/api/v1/auth/login", { body: { email, password } }))));
  };
  const onMfa = (e: FormEvent) => {
    e.preventDefault();
    if (step.kind !== "mfa") return;
    const trimmed = code.replace(/\s+/g, "");
    const body = /^\d{6,8}$/.test(trimmed)
      ? { challengeToken: step.challengeToken, code: trimmed, trustDevice: false }
      : { challengeToken: step.challengeToken, recoveryCode: code.trim(), trustDevice: false };
    void run(async () => { await finish(await call(api.POST("/api/v1/auth/login/mfa", { body }))); });
  };
  const onSendCode = () => {
    if (!email) {
      setError("Enter your email address first.");
      return;
    }
    void run(async () => {
      await call(api.POST("/api/v1/auth/login/code", { body: { email } }));
      setCode("");
      setStep({ kind: "code-sent" });
    });
  };
  const onVerifyCode = (e: FormEvent) => {
    e.preventDefault();
    void run(async () =>
      finish(await call(api.POST("/api/v1/auth/login/code/verify", { body: { email, code: code.trim() } }))));
  };

  return (
    <div className="signin">
      <h1>Sign in to Sailplane</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {step.kind === "password" && (
        <form onSubmit={onPassword} aria-label="Sign in">
          <label>Email<input type="email" name="email" autoComplete="username" required autoFocus
            value={email} onChange={(e) => setEmail(e.target.value)} /></label>
          <label>Password<input type="password" name="password" autoComplete="current-password" required
            value={password} onChange={(e) => setPassword(e.target.value)} /></label>
          <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
          <button type="button" className="link" disabled={busy} onClick={onSendCode}>
            Email me a one-time code instead
          </button>
        </form>
      )}
      {step.kind === "mfa" && (
        <form onSubmit={onMfa} aria-label="Two-factor authentication">
          <p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
          <label>Code<input name="code" inputMode="numeric" autoComplete="one-time-code" required autoFocus
            value={code} onChange={(e) => setCode(e.target.value)} /></label>
          <button type="submit" disabled={busy}>{busy ? "Checking…" : "Verify"}</button>
          <button type="button" className="link" onClick={() => setStep({ kind: "password" })}>Back</button>
        </form>
      )}
      {step.kind === "code-sent" && (
        <form onSubmit={onVerifyCode} aria-label="One-time code">
          <p>If {email} has an account, a sign-in code is on its way. Enter it here.</p>
          <label>Code<input name="code" autoComplete="one-time-code" required autoFocus
            value={code} onChange={(e) => setCode(e.target.value)} /></label>
          <button type="submit" disabled={busy}>{busy ? "Checking…" : "Sign in"}</button>
          <button type="button" className="link" onClick={() => setStep({ kind: "password" })}>Use my password</button>
        </form>
      )}
    </div>
  );
}
