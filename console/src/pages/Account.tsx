/** The signed-in person's own security: two-factor authentication (enrol an authenticator from a QR code the
 * server draws, confirm with its first code, recovery codes shown this once; new recovery codes with a current
 * code, the old ones then void; turn it off with a current code) and their password (needs the current one;
 * every other login ends). */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { CopyButton, described, FieldError, useAction, type FieldErrors } from "../admin/ui";

type MfaStatus = components["schemas"]["MfaStatus"];
type Enrollment = components["schemas"]["TotpEnrollment"];

/** The QR code as an image: an SVG in an <img> runs no script, and comes from our own server (no CDN). */
function qrImage(svg: string): string {
  return `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(svg)))}`;
}

export default function Account() {
  const [params] = useSearchParams();
  return (
    <section>
      <h1>Account security</h1>
      {params.get("enroll") === "required" && (
        <p className="notice" role="status">
          Your organization requires two-factor authentication: set up an authenticator to continue.
        </p>
      )}
      <TwoFactor />
      <ChangePassword />
    </section>
  );
}

function TwoFactor() {
  const [status, setStatus] = useState<MfaStatus | null>(null);
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [recoveryCodes, setRecoveryCodes] = useState<string[] | null>(null);
  const [replaced, setReplaced] = useState(false); // the codes shown replace earlier ones (regenerated)
  const [code, setCode] = useState("");
  const { busy, error, fields, run } = useAction();

  const load = useCallback(() => run(async () => setStatus(await call(api.GET("/api/v1/me/mfa")))), [run]);
  useEffect(() => { void load(); }, [load]);

  const start = () => void run(async () => {
    setRecoveryCodes(null);
    setCode("");
    setEnrollment(await call(api.POST("/api/v1/me/mfa/totp")));
  });
  const confirm = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const answer = await call(api.POST("/api/v1/me/mfa/totp/verify", { body: { code: code.trim() } }));
      setEnrollment(null);
      setCode("");
      setReplaced(false);
      setRecoveryCodes(answer.recoveryCodes);
      setStatus(await call(api.GET("/api/v1/me/mfa")));
    });
  };
  const regenerated = (codes: string[]) => void run(async () => {
    setReplaced(true);
    setRecoveryCodes(codes);
    setStatus(await call(api.GET("/api/v1/me/mfa")));
  });
  const disable = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      await call(api.DELETE("/api/v1/me/mfa/totp", { body: { code: code.trim() } }));
      setCode("");
      setRecoveryCodes(null);
      setStatus(await call(api.GET("/api/v1/me/mfa")));
    });
  };

  return (
    <section aria-labelledby="mfa-heading">
      <h2 id="mfa-heading">Two-factor authentication</h2>
      {error && <p className="error" role="alert">{error}</p>}
      {status === null && !error && <p className="muted" role="status">Loading…</p>}
      {status && (
        <p>
          {status.enabled
            ? `On: an authenticator app is set up; ${status.recoveryCodesRemaining} recovery codes left.`
            : "Off: your password alone signs you in."}
          {status.required && " Your organization requires it."}
        </p>
      )}
      {recoveryCodes && (
        <div role="region" aria-label="Recovery codes">
          <p><strong>Save these recovery codes now: they are shown only this once.</strong> Each one signs you in
            once if you lose your authenticator.</p>
          {replaced && <p className="notice">Your old recovery codes no longer work: only these new ones do.</p>}
          <ul className="codes">{recoveryCodes.map((c) => <li key={c}><code>{c}</code></li>)}</ul>
          <CopyButton text={recoveryCodes.join("\n")} label="Copy recovery codes" />
          <button type="button" onClick={() => setRecoveryCodes(null)}>I have saved them</button>
        </div>
      )}
      {status && !status.enabled && !enrollment && (
        <button type="button" disabled={busy} onClick={start}>Set up an authenticator app</button>
      )}
      {enrollment && (
        <form onSubmit={confirm} aria-label="Confirm authenticator">
          <p>Scan this code with your authenticator app (or enter the key by hand), then type the 6-digit code
            it shows.</p>
          <img src={qrImage(enrollment.qrCodeSvg)} alt="QR code for your authenticator app" width={200}
            height={200} />
          <p>Key: <code aria-label="Secret key">{enrollment.secret}</code></p>
          <label>Code<input name="code" inputMode="numeric" autoComplete="one-time-code" required
            value={code} onChange={(e) => setCode(e.target.value)} {...described(fields, "code")} /></label>
          <FieldError errors={fields} name="code" />
          <button type="submit" disabled={busy}>{busy ? "Checking…" : "Turn on"}</button>
          <button type="button" className="link" onClick={() => setEnrollment(null)}>Cancel</button>
        </form>
      )}
      {status?.enabled && !recoveryCodes && <RegenerateRecoveryCodes onRegenerated={regenerated} />}
      {status?.enabled && !recoveryCodes && (
        <form onSubmit={disable} aria-label="Turn off two-factor authentication">
          <label>Current code<input name="code" inputMode="numeric" autoComplete="one-time-code" required
            value={code} onChange={(e) => setCode(e.target.value)} {...described(fields, "code")} /></label>
          <FieldError errors={fields} name="code" />
          <button type="submit" disabled={busy}>Turn off</button>
        </form>
      )}
    </section>
  );
}

/** New recovery codes for a current authenticator code; the API voids the old ones at once. */
function RegenerateRecoveryCodes({ onRegenerated }: { onRegenerated: (codes: string[]) => void }) {
  const [code, setCode] = useState("");
  const { busy, error, fields, run } = useAction();
  // The API names the field `code`, like the turn-off form's: shown beside this form's own field (its own id).
  const errors: FieldErrors = fields.code ? { regenerateCode: fields.code } : {};

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const answer = await call(api.POST("/api/v1/me/mfa/recovery-codes", { body: { code: code.trim() } }));
      setCode("");
      onRegenerated(answer.recoveryCodes);
    });
  };

  return (
    <form onSubmit={submit} aria-label="Regenerate recovery codes">
      <h3>Recovery codes</h3>
      <p className="hint">New recovery codes replace all of your current ones: the old codes stop working at once,
        used or not. Enter a code from your authenticator app to confirm.</p>
      {error && Object.keys(errors).length === 0 && <p className="error" role="alert">{error}</p>}
      <label>Authenticator code<input name="regenerateCode" inputMode="numeric" autoComplete="one-time-code"
        required value={code} onChange={(e) => setCode(e.target.value)} {...described(errors, "regenerateCode")} />
      </label>
      <FieldError errors={errors} name="regenerateCode" />
      <button type="submit" disabled={busy}>{busy ? "Regenerating…" : "Regenerate recovery codes"}</button>
    </form>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [done, setDone] = useState(false);
  const { busy, error, fields, run } = useAction();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setDone(false);
    void run(async () => {
      if (next !== repeat) throw new Error("The two new passwords differ.");
      const me = await call(api.GET("/api/v1/me"));
      await call(api.POST("/api/v1/users/{user}/change-password", {
        params: { path: { user: me.user.id } }, body: { currentPassword: current, newPassword: next } }));
      setCurrent(""); setNext(""); setRepeat(""); setDone(true);
    });
  };

  return (
    <section aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <form onSubmit={submit} aria-label="Change password">
        {error && <p className="error" role="alert">{error}</p>}
        {done && <p role="status">Password changed. Your other sign-ins have ended.</p>}
        <label>Current password<input type="password" name="currentPassword" autoComplete="current-password"
          required value={current} onChange={(e) => setCurrent(e.target.value)}
          {...described(fields, "currentPassword")} /></label>
        <FieldError errors={fields} name="currentPassword" />
        <label>New password<input type="password" name="newPassword" autoComplete="new-password" required
          value={next} onChange={(e) => setNext(e.target.value)} {...described(fields, "newPassword")} /></label>
        <FieldError errors={fields} name="newPassword" />
        <label>Repeat new password<input type="password" name="repeatPassword" autoComplete="new-password" required
          value={repeat} onChange={(e) => setRepeat(e.target.value)} /></label>
        <button type="submit" disabled={busy}>{busy ? "Changing…" : "Change password"}</button>
      </form>
    </section>
  );
}
