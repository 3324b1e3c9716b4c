"""The interactive sign-ins of `sailplane login`, typed into a pseudo-terminal as a person would: the password
prompt (not echoed), the MFA prompt answered with a real TOTP code, and a one-time code read from the email."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.conftest import Mailbox
from tests.identity.test_email_flows import CODE_RE, latest
from tests.mfa.helpers import code_at, enrolled_user
from tests.runs.live import python_job
from tests.support.actors import PASSWORD, signup
from tests.support.server import LiveServer
from tests.support.world import create_team

# The child becomes a session leader with the pseudo-terminal as its controlling terminal (so getpass reads the
# password from it with echo off), then runs `sailplane`.
_ON_TERMINAL = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                "os.execv(sys.executable, [sys.executable, '-m', 'sailplane.cli', *sys.argv[1:]])")


class Terminal:
    def __init__(self, config_dir: Path, *args: str) -> None:
        import pty

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES") and not k.startswith("SAILPLANE_")}
        env.update({"SAILPLANE_CONFIG_DIR": str(config_dir), "TERM": "xterm-256color"})
        self.proc = subprocess.Popen([sys.executable, "-c", _ON_TERMINAL, *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} on the terminal: {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    assert re.search(pattern, self.seen), f"no {pattern!r} on the terminal: {self.seen!r}"
        return self.seen

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def finish(self, timeout: float = 60) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
            try:
                while select.select([self.master], [], [], 0.2)[0]:
                    chunk = os.read(self.master, 4096)
                    if not chunk:
                        break
                    self.seen += chunk.decode(errors="replace")
            except OSError:
                pass
            return code
        finally:
            os.close(self.master)


# click writes "Password:" itself, then getpass turns echo off (discarding what was typed) and writes " ": only
# then may the password be typed.
PASSWORD_PROMPT = "Password: "
# A visible prompt is one write (strace: 41 bytes), yet a CI run read "...code):", the echo of the code typed on
# seeing "Authenticator code", then the prompt's last space at the start of the next line, in front of the error
# line: type only once the whole prompt, its trailing space included, is on the terminal.
MFA_PROMPT = re.escape("Authenticator code (or a recovery code): ")


def _saved(config_dir: Path) -> dict[str, str]:
    return json.loads((config_dir / "credentials.json").read_text())["profiles"]["default"]  # type: ignore[no-any-return]


def test_password_then_mfa_prompt(sdk_server: LiveServer, tmp_path: Path) -> None:
    actor, secret, _ = enrolled_user(f"{sdk_server.url}/api/v1")
    term = Terminal(tmp_path, "login", "--url", sdk_server.url)
    term.expect("Email")
    term.type(actor.email or "")
    term.expect(PASSWORD_PROMPT)
    term.type(PASSWORD)
    term.expect(MFA_PROMPT)
    term.type(code_at(secret, 0))
    assert term.finish() == 0, term.seen
    assert PASSWORD not in term.seen  # not echoed
    assert f"Logged in to {sdk_server.url} as {actor.email}" in term.seen
    assert _saved(tmp_path)["organization_id"] == actor.org_id


def test_one_time_code_from_the_email(sdk_server: LiveServer, mailbox: Mailbox, tmp_path: Path) -> None:
    actor = signup(f"{sdk_server.url}/api/v1")
    term = Terminal(tmp_path, "login", "--url", sdk_server.url, "--email", actor.email or "", "--code")
    term.expect("Code from the email")
    match = CODE_RE.search(latest(mailbox, actor.email or "", "sign-in code"))
    assert match
    term.type(match.group(1))
    assert term.finish() == 0, term.seen
    token = _saved(tmp_path)["token"]
    import httpx

    me = httpx.get(f"{sdk_server.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["user"]["email"] == actor.email


def test_a_wrong_authenticator_code_is_one_line(sdk_server: LiveServer, tmp_path: Path) -> None:
    actor, secret, _ = enrolled_user(f"{sdk_server.url}/api/v1")
    term = Terminal(tmp_path, "login", "--url", sdk_server.url, "--email", actor.email or "")
    term.expect(PASSWORD_PROMPT)
    term.type(PASSWORD)
    term.expect(MFA_PROMPT)
    right = code_at(secret, 0)
    term.type(str((int(right) + 1) % 1_000_000).zfill(6))
    assert term.finish() == 3, term.seen
    errors = [line for line in term.seen.splitlines() if "sailplane: error: " in line]
    assert len(errors) == 1 and "Traceback" not in term.seen, term.seen
    assert not (tmp_path / "credentials.json").exists()


def test_run_wait_shows_a_live_status_line(compute_server: LiveServer, tmp_path: Path) -> None:
    owner = signup(f"{compute_server.url}/api/v1")
    team = create_team(owner, "CLI terminal")
    python_job(owner, team, "import time\ntime.sleep(2)\nprint('done', flush=True)\n", jobKey="cli-wait")
    term = Terminal(tmp_path, "login", "--url", compute_server.url, "--email", owner.email or "")
    term.expect(PASSWORD_PROMPT)
    term.type(PASSWORD)
    assert term.finish() == 0, term.seen
    term = Terminal(tmp_path, "jobs", "run", "cli-wait", "--wait")
    term.expect(r"run [A-Z0-9]+: (dispatched|waiting_for_sail|running)")  # the status line, while it runs
    assert term.finish(timeout=120) == 0, term.seen
    assert "succeeded" in term.seen and re.search(r"│ [A-Z0-9]{10,20} +│ succeeded", term.seen), term.seen


def test_connect_opens_a_pyspark_shell_on_the_session(compute_server: LiveServer, tmp_path: Path) -> None:
    owner = signup(f"{compute_server.url}/api/v1")
    team = create_team(owner, "CLI pyspark")
    term = Terminal(tmp_path, "login", "--url", compute_server.url, "--email", owner.email or "")
    term.expect(PASSWORD_PROMPT)
    term.type(PASSWORD)
    assert term.finish() == 0, term.seen
    session = owner.post("/workloads/sessions", json={"teamId": team})
    assert session.status_code == 201, session.text
    try:
        # No `pyspark` launcher on PATH here: the shell is this Python's pyspark.shell.
        term = Terminal(tmp_path, "sessions", "connect", session.json()["id"], "--no-use-ssl", "--pyspark")
        term.expect("SparkSession available as 'spark'", timeout=120)
        term.expect(">>> ")
        term.type('spark.sql("select 40 + 2").collect()[0][0]')
        term.expect(r"\n42\r?\n", timeout=120)
        term.type("exit()")
        assert term.finish() == 0, term.seen
        assert ";token=" not in term.seen  # the token is in the shell's environment, not on the screen
    finally:
        assert owner.delete(f"/workloads/sessions/{session.json()['id']}").status_code == 200
