/** Sign-in: password (then the MFA code when the API asks for one), a one-time code sent by email, or single
 * sign-on through the identity provider of the email's domain (ending at /signin/sso: see sso.ts). The theme
 * toggle of the top bar is here too, remembered the same way. */
import { useEffect, useState, type FormEvent } from "react";
import { Navigate, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import { useAuth } from "../auth";
import { SSO_PAGE, ssoStartUrl, takeSsoReturn } from "../sso";
import { ThemeToggle } from "../theme";

type Step =
  | { kind: "password" }
  | { kind: "mfa"; challengeToken: string }
  | { kind: "code-sent" }
  | { kind: "reset-sent" }
  | { kind: "sso" }
  | { kind: "new-password"; token: string; userId: string };

interface Answer {
  token?: string;
  challengeToken?: string;
  userId?: string;
  mustChangePassword?: boolean;
  mfaEnrollmentRequired?: boolean;
}

// The SSO answer is taken once per page load (React's development double effects must not spend it twice).
let ssoAnswer: ReturnType<typeof takeSsoReturn> | null = null;

export function SignIn({ sso = false }: { sso?: boolean }) {
  const { auth, signIn } = useAuth();
  const [params] = useSearchParams();
  const [step, setStep] = useState<Step>({ kind: sso ? "sso" : "password" });
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const [ssoNext, setSsoNext] = useState<string | null>(null);
  const [forcedNext, setForcedNext] = useState<string | null>(null);
  const [newPassword, setNewPassword] = useState("");
  const [repeat, setRepeat] = useState("");

  useEffect(() => {
    if (!sso) return;
    if (ssoAnswer === null) {
      ssoAnswer = takeSsoReturn(window.location.hash);
      window.history.replaceState(null, "", SSO_PAGE);  // the code leaves the address bar and history
    }
    const answer = ssoAnswer;
    if (answer.kind === "error") {
      setError(answer.message);
      setStep({ kind: "password" });
      return;
    }
    setEmail(answer.email);
    setSsoNext(answer.next);
    void run(async () => {
      try {
        await finish(await call(api.POST("/api/v1/auth/sso/token",
          { body: { code: answer.code, codeVerifier: answer.verifier } })), answer.email);
      } catch (e) {
        setStep({ kind: "password" });
        throw e;
      }
    });
  }, [sso]); // eslint-disable-line react-hooks/exhaustive-deps

  const next = forcedNext ?? params.get("next") ?? ssoNext;
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

  function finish(answer: Answer, who: string = email) {
    if (answer.token && answer.mustChangePassword && answer.userId) {
      // The API refuses everything else with this login until the password is changed.
      setNewPassword("");
      setRepeat("");
      setStep({ kind: "new-password", token: answer.token, userId: answer.userId });
      return Promise.resolve();
    }
    if (answer.token && answer.mfaEnrollmentRequired) setForcedNext("/account?enroll=required");
    if (answer.token) return signIn(answer.token, who);
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
  const onSso = () => {
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email.trim())) {
      setError("Enter your work email address first: its domain picks your organization's identity provider.");
      return;
    }
    setBusy(true);
    window.location.assign(ssoStartUrl(email.trim(), next));
  };
  const onNewPassword = (e: FormEvent) => {
    e.preventDefault();
    if (step.kind !== "new-password") return;
    if (newPassword !== repeat) {
      setError("The two new passwords differ.");
      return;
    }
    void run(async () => {
      const headers: Record<string, string> = { Authorization: `Bearer ${step.token}` };
      const me = await call(api.GET("/api/v1/me", { headers }));
      const organizationId = me.organizationId ?? me.organizations[0]?.id;
      if (organizationId) headers["LakeSail-Organization-Id"] = organizationId;
      await call(api.POST("/api/v1/users/{user}/change-password", { params: { path: { user: step.userId } },
        headers, body: { currentPassword: password, newPassword } }));
      await signIn(step.token, email);
    });
  };
  const onForgot = () => {
    if (!email) {
      setError("Enter your email address first.");
      return;
    }
    void run(async () => {
      await call(api.POST("/api/v1/auth/password/forgot", { body: { email } }));
      setStep({ kind: "reset-sent" });
    });
  };
  const onVerifyCode = (e: FormEvent) => {
    e.preventDefault();
    void run(async () =>
      finish(await call(api.POST("/api/v1/auth/login/code/verify", { body: { email, code: code.trim() } }))));
  };

  return (
    <div className="signin">
      <div className="signin-tools"><ThemeToggle /></div>
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
          <button type="button" className="link" disabled={busy} onClick={onSso}>
            Sign in with SSO
          </button>
          <button type="button" className="link" disabled={busy} onClick={onForgot}>
            Forgot your password?
          </button>
        </form>
      )}
      {step.kind === "sso" && <p className="muted" role="status">Finishing single sign-on…</p>}
      {step.kind === "mfa" && (
        <form onSubmit={onMfa} aria-label="Two-factor authentication">
          <p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
          <label>Code<input name="code" inputMode="numeric" autoComplete="one-time-code" required autoFocus
            value={code} onChange={(e) => setCode(e.target.value)} /></label>
          <button type="submit" disabled={busy}>{busy ? "Checking…" : "Verify"}</button>
          <button type="button" className="link" onClick={() => setStep({ kind: "password" })}>Back</button>
        </form>
      )}
      {step.kind === "new-password" && (
        <form onSubmit={onNewPassword} aria-label="Choose a new password">
          <p>Your password was reset or has expired: choose a new one to continue.</p>
          {!password && (
            <label>Current password<input type="password" name="currentPassword" autoComplete="current-password"
              required value={password} onChange={(e) => setPassword(e.target.value)} /></label>
          )}
          <label>New password<input type="password" name="newPassword" autoComplete="new-password" required
            autoFocus value={newPassword} onChange={(e) => setNewPassword(e.target.value)} /></label>
          <label>Repeat new password<input type="password" name="repeatPassword" autoComplete="new-password"
            required value={repeat} onChange={(e) => setRepeat(e.target.value)} /></label>
          <button type="submit" disabled={busy}>{busy ? "Saving…" : "Change password and continue"}</button>
        </form>
      )}
      {step.kind === "reset-sent" && (
        <div role="status">
          <p>If {email} has an account, an email with a link to choose a new password is on its way.</p>
          <button type="button" className="link" onClick={() => setStep({ kind: "password" })}>Back to sign in</button>
        </div>
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
