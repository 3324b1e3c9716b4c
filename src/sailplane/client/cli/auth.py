"""`sailplane login`, `logout`, `orgs` and `use`: signing in (password, one-time email code, SSO in the browser,
MFA) and choosing the organization a profile acts on."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from sailplane.client.cli.common import OutputOption, ProfileOption, api, client_for, emit, errors, fail
from sailplane.client.cli.profiles import DEFAULT_PROFILE, Profile, load, save


def login(
    url: Annotated[str, typer.Option(help="The server, e.g. https://sailplane.example.com (default: the "
                                          "profile's, else SAILPLANE_URL).")] = "",
    email: Annotated[str, typer.Option(help="Your email address (prompted when missing).")] = "",
    code: Annotated[bool, typer.Option("--code", help="Sign in with a one-time code sent by email instead of "
                                                      "a password.")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input (scripts; "
                                                      "SAILPLANE_PASSWORD works too).")] = False,
    sso: Annotated[str, typer.Option("--sso", metavar="EMAIL|DOMAIN|IDP", help="Sign in through your "
                                     "organization's identity provider in the browser: your email (the provider "
                                     "that verified its domain), a domain (with --email) or the provider's "
                                     "ID.")] = "",
    print_url: Annotated[bool, typer.Option("--print-url", help="With --sso: only print the sign-in URL (open "
                                                                "it in a browser on this computer).")] = False,
    sso_timeout: Annotated[float, typer.Option(help="With --sso: seconds to wait for the browser.")] = 300,
    profile: ProfileOption = DEFAULT_PROFILE,
) -> None:
    """Sign in and keep the token in the profile (0600 file in your config directory)."""
    saved = load(profile)
    url = url or (saved.url if saved else "") or os.environ.get("SAILPLANE_URL", "")
    if not url:
        fail("give the server with --url (or SAILPLANE_URL)", 2)
    if sso and code:
        fail("give --sso or --code, not both", 2)
    if not sso:
        email = email or (saved.email if saved and saved.email else "") or typer.prompt("Email")
    with errors(profile, signing_in=True), client_for(Profile(url)) as client:
        if sso:
            from sailplane.client.cli.sso import sso_login

            answer = sso_login(client, sso, email, sso_timeout, print_url)
        elif code:
            client.request_login_code(email)
            answer = client.verify_login_code(email, typer.prompt("Code from the email").strip())
        else:
            answer = client.login(email, _password(password_stdin), device_name="sailplane CLI")
        if answer.get("mfaRequired"):
            if answer.get("enrollmentRequired"):
                fail("your organization requires MFA: enroll an authenticator in the web console first", 3)
            mfa = typer.prompt("Authenticator code (or a recovery code)").strip()
            # Authenticator codes are digits; recovery codes are letters and digits (xxxxx-xxxxx).
            recovery = {"code": mfa} if mfa.isdigit() else {"recovery_code": mfa}
            answer = client.complete_mfa_login(answer["challengeToken"], **recovery)
        me = client.me()
    email = email or str((me.get("user") or {}).get("email") or "")
    organization = me.get("organizationId")
    path = save(profile, Profile(url, client.token, organization, email))
    print(f"Logged in to {url} as {email} (organization {organization}); token saved in {path}"
          + ("" if profile == DEFAULT_PROFILE else f" as profile {profile!r}"))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return os.environ.get("SAILPLANE_PASSWORD") or str(typer.prompt("Password", hide_input=True))


def logout(profile: ProfileOption = DEFAULT_PROFILE) -> None:
    """Revoke the profile's token on the server and forget it."""
    saved = load(profile)
    if saved is None or not saved.token:
        print("Not logged in.")
        return
    with api(profile) as client:
        client.logout()
    save(profile, Profile(saved.url, None, saved.organization_id, saved.email))
    print("Logged out.")


def orgs(profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """The organizations you belong to; * marks the one commands act on."""
    with api(profile) as client:
        me = client.me()
    saved = load(profile)
    current = saved.organization_id if saved else None
    items: list[dict[str, Any]] = me.get("organizations") or []
    emit(output, items, [("", lambda o: "*" if o["id"] == current else ""), ("ID", lambda o: o["id"]),
                         ("NAME", lambda o: o["name"])])


def use(organization: Annotated[str, typer.Argument(help="An organization ID or name (see `sailplane orgs`).")],
        profile: ProfileOption = DEFAULT_PROFILE) -> None:
    """Make the profile act on another of your organizations."""
    with api(profile) as client:
        me = client.me()
    saved = load(profile)
    assert saved is not None
    for org in me.get("organizations") or []:
        if organization in (org["id"], org["name"]):
            save(profile, Profile(saved.url, saved.token, org["id"], saved.email))
            print(f"Using organization {org['name']} ({org['id']}).")
            return
    fail(f"you are not a member of an organization {organization!r} (see `sailplane orgs`)")
