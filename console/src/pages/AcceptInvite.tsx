/** Where the invitation email's link (`/invites/{token}`) lands: what the invitation offers (describeInvitation,
 * public), then joining: signed in as the invited email, accept; not signed in, create the account here (name and
 * password, acceptInvitation's signup fields) or sign in first and come back. Then on to the new organization. */
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, ApiFailure, call } from "../api/client";
import type { components } from "../api/schema";
import { useAuth } from "../auth";
import { described, FieldError, useAction, when } from "../admin/ui";

type Details = components["schemas"]["InvitationDetails"];

export default function AcceptInvite() {
  const { token = "" } = useParams();
  const { auth, signIn, signOut } = useAuth();
  const navigate = useNavigate();
  const [details, setDetails] = useState<Details | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const { busy, error, fields, run } = useAction();

  useEffect(() => {
    call(api.GET("/api/v1/invites/{invite}", { params: { path: { invite: token } } }))
      .then(setDetails, (e: Error) => setLoadError(e instanceof ApiFailure && e.status === 404
        ? "This invitation link is not valid: it may have been revoked or replaced by a newer one. Ask for a new one."
        : e.message));
  }, [token]);

  const here = `/invites/${encodeURIComponent(token)}`;

  async function createAccount(e: FormEvent) {
    e.preventDefault();
    if (!details) return;
    await run(async () => {
      const answer = await call(api.POST("/api/v1/invites/{invite}/accept", {
        params: { path: { invite: token } }, body: { displayName, password },
      }));
      if ("token" in answer) await signIn(answer.token, details.email, answer.organizationId);
      navigate("/teams", { replace: true });
    });
  }

  async function acceptSignedIn() {
    if (!details || !auth) return;
    await run(async () => {
      const answer = await call(api.POST("/api/v1/invites/{invite}/accept", { params: { path: { invite: token } } }));
      await signIn(auth.token, auth.email, answer.organizationId);
      navigate("/teams", { replace: true });
    });
  }

  const sameEmail = details && auth && auth.email.toLowerCase() === details.email.toLowerCase();
  return (
    <div className="signin">
      <h1>Join {details ? details.organizationName : "an organization"} on Sailplane</h1>
      {loadError && <p className="error" role="alert">{loadError}</p>}
      {!details && !loadError && <p className="muted" role="status">Loading the invitation…</p>}
      {details && (
        <>
          <p>{details.invitedBy ?? "An administrator"} invited <strong>{details.email}</strong> to
            join <strong>{details.organizationName}</strong>.</p>
          {details.status === "accepted" && (
            <p className="empty">This invitation was already accepted. <Link to="/signin">Sign in</Link> to continue.</p>
          )}
          {details.status === "expired" && (
            <p className="empty">This invitation expired on {when(details.expiresAt)}. Ask {details.invitedBy ?? "the administrator"} to
              resend it.</p>
          )}
          {details.status === "pending" && error && Object.keys(fields).length === 0 && (
            <p className="error" role="alert">{error}</p>
          )}
          {details.status === "pending" && auth && sameEmail && (
            <div className="actions">
              <button type="button" disabled={busy} onClick={() => void acceptSignedIn()}>
                {busy ? "Joining…" : `Join ${details.organizationName}`}</button>
            </div>
          )}
          {details.status === "pending" && auth && !sameEmail && (
            <p className="empty">You are signed in as {auth.email}, but the invitation is for {details.email}.{" "}
              <button type="button" className="link" onClick={() => void signOut()}>Sign out</button> to accept it.</p>
          )}
          {details.status === "pending" && !auth && (
            <form onSubmit={createAccount} aria-label="Create your account" noValidate>
              <p className="muted">Create your account for {details.email}. The invitation expires
                on {when(details.expiresAt)}.</p>
              <label>Your name
                <input name="displayName" autoComplete="name" required maxLength={255} value={displayName}
                  onChange={(e) => setDisplayName(e.target.value)} {...described(fields, "displayName")} />
                <FieldError errors={fields} name="displayName" />
              </label>
              <label>Password
                <input type="password" name="password" autoComplete="new-password" required value={password}
                  onChange={(e) => setPassword(e.target.value)} {...described(fields, "password")} />
                <FieldError errors={fields} name="password" />
              </label>
              <button type="submit" disabled={busy}>{busy ? "Creating your account…" : "Create account and join"}</button>
              <p className="muted">Already have an account? <Link to={`/signin?next=${encodeURIComponent(here)}`}>Sign
                in</Link> and come back to this link.</p>
            </form>
          )}
        </>
      )}
    </div>
  );
}
