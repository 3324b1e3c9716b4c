"""`sailplane login --sso` end to end: the real CLI (a subprocess), the real OpenID provider, and BROWSER set to a
script that plays the user's browser: it signs in at the provider, follows the redirect to our callback and the
one after it to the CLI's loopback, as a browser would."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from sailplane.config import Settings
from tests.client.test_cli import Cli, one_line_error
from tests.client.test_cli_terminal import MFA_PROMPT, Terminal
from tests.mfa.helpers import code_at
from tests.sso.test_domain_routing import organization_with_sso, unique_domain
from tests.support.actors import Actor, signup
from tests.support.dnsmasq import Dnsmasq

ROOT = Path(__file__).resolve().parents[2]
BROWSER = """#!{python}
import json, sys
sys.path.insert(0, {root!r})
import httpx
from tests.sso.browser import sign_in_at_provider

url = sys.argv[1]
callback = sign_in_at_provider(url, {public_url!r}, {login!r})
back = httpx.get(callback.replace({public_url!r}, {server!r}), follow_redirects=False)
forged = loopback = None
if back.status_code == 303:  # first a page of another site trying its own code at the CLI's loopback
    location = back.headers["location"]
    forged = httpx.get(location.split("?")[0], params={{"code": "attacker", "state": "guessed-state-xxxxxxxx"}})
    loopback = httpx.get(location)
with open({seen!r}, "w") as f:
    json.dump({{"provider": url, "callback": back.status_code, "location": back.headers.get("location"),
               "forged": forged.status_code if forged else None, "page": loopback.text if loopback else back.text}},
              f)
"""


def browser(tmp_path: Path, settings: Settings, api_url: str, login: str) -> tuple[Path, Path]:
    script, seen = tmp_path / "browser.py", tmp_path / "seen.json"
    script.write_text(BROWSER.format(python=sys.executable, root=str(ROOT), public_url=settings.public_url,
                                     server=api_url.rsplit("/api/v1", 1)[0], login=login, seen=str(seen)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, seen


def test_login_with_sso_through_the_browser(api_url: str, oidc_issuer: str, settings: Settings,
                                            dns_server: Dnsmasq, tmp_path: Path) -> None:
    owner, domain = organization_with_sso(api_url, oidc_issuer, dns_server)
    email = f"cli-user@{domain}"
    script, seen = browser(tmp_path, settings, api_url, email)
    server = api_url.rsplit("/api/v1", 1)[0]
    cli = Cli(tmp_path / "config")

    done = cli("login", "--url", server, "--sso", email, env={"BROWSER": str(script)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"Logged in to {server} as {email} (organization {owner.org_id})" in done.stdout
    opened = json.loads(seen.read_text())
    assert opened["provider"].startswith(oidc_issuer) and opened["callback"] == 303
    assert opened["location"].startswith("http://127.0.0.1:") and "Signed in" in opened["page"]
    assert opened["forged"] == 404  # another state: not taken, the CLI kept waiting for its own
    assert opened["provider"] in done.stderr  # also printed, for a browser that did not open

    saved = json.loads((tmp_path / "config" / "credentials.json").read_text())["profiles"]["default"]
    assert saved["token"] not in done.stdout + done.stderr + seen.read_text()  # never through the browser
    me = Actor(api_url, saved["token"]).get("/me").json()
    assert me["user"]["email"] == email and me["organizationId"] == owner.org_id
    assert [o["id"] for o in cli.json("orgs")] == [owner.org_id]

    # An account of another organization with an address in the domain: refused, in one line, without waiting.
    victim = f"victim@{domain}"
    signup(api_url, email=victim)
    script, _ = browser(tmp_path, settings, api_url, victim)
    refused = Cli(tmp_path / "victim")("login", "--url", server, "--sso", victim, env={"BROWSER": str(script)},
                                       timeout=60)
    assert refused.returncode == 3, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("sailplane: error: ")]
    assert len(errors) == 1 and "refused" in errors[0] and "not a member" in errors[0], refused.stderr
    assert not (tmp_path / "victim" / "credentials.json").exists()


def test_sso_refusals_are_one_line(api_url: str, oidc_issuer: str, settings: Settings, tmp_path: Path) -> None:
    server = api_url.rsplit("/api/v1", 1)[0]
    cli = Cli(tmp_path / "config")
    unknown = cli("login", "--url", server, "--sso", f"someone@{unique_domain()}", "--print-url")
    one_line_error(unknown, 1, "HTTP 404")
    one_line_error(cli("login", "--url", server, "--sso", unique_domain()), 2, "email address")
    assert not (tmp_path / "config" / "credentials.json").exists()


def test_sso_then_the_mfa_prompt_in_a_terminal(api_url: str, oidc_issuer: str, settings: Settings,
                                              dns_server: Dnsmasq, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A user with an authenticator signs in through the identity provider, then types the authenticator code at
    the CLI's prompt (a pseudo-terminal); a wrong code is refused in one line and saves nothing."""
    owner, domain = organization_with_sso(api_url, oidc_issuer, dns_server)
    email = f"mfa-user@{domain}"
    server = api_url.rsplit("/api/v1", 1)[0]
    script, _ = browser(tmp_path, settings, api_url, email)
    first = Cli(tmp_path / "first")("login", "--url", server, "--sso", email, env={"BROWSER": str(script)},
                                    timeout=120)
    assert first.returncode == 0, first.stderr
    user = Actor(api_url, json.loads((tmp_path / "first" / "credentials.json").read_text())
                 ["profiles"]["default"]["token"])
    r = user.post("/me/mfa/totp")
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    assert user.post("/me/mfa/totp/verify", json={"code": code_at(secret, -1)}).status_code == 200

    monkeypatch.setenv("BROWSER", str(script))
    wrong = Terminal(tmp_path / "wrong", "login", "--url", server, "--sso", email)
    wrong.expect(MFA_PROMPT, timeout=120)
    wrong.type("000000" if code_at(secret, 0) != "000000" else "111111")
    assert wrong.finish() == 3, wrong.seen
    assert len([line for line in wrong.seen.splitlines() if line.startswith("sailplane: error: ")]) == 1, wrong.seen
    assert not (tmp_path / "wrong" / "credentials.json").exists()

    term = Terminal(tmp_path / "second", "login", "--url", server, "--sso", email)
    term.expect(MFA_PROMPT, timeout=120)
    term.type(code_at(secret, 1))  # the step after the enrolment's: each code is accepted once
    assert term.finish() == 0, term.seen
    assert f"Logged in to {server} as {email} (organization {owner.org_id})" in term.seen
    saved = json.loads((tmp_path / "second" / "credentials.json").read_text())["profiles"]["default"]
    assert Actor(api_url, saved["token"]).get("/me").json()["user"]["email"] == email
