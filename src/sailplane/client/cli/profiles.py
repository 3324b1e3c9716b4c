"""Where the CLI keeps its logins: one JSON file of profiles (server URL, token, organization) in the user's
config directory ($SAILPLANE_CONFIG_DIR, else $XDG_CONFIG_HOME/sailplane, else ~/.config/sailplane), readable
by the user only (0600, directory 0700), because it holds bearer tokens."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_PROFILE = "default"


@dataclass
class Profile:
    url: str
    token: str | None = None
    organization_id: str | None = None
    email: str | None = None


def config_dir() -> Path:
    explicit = os.environ.get("SAILPLANE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sailplane"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def _read() -> dict[str, dict[str, str | None]]:
    try:
        data = json.loads(credentials_path().read_text())
    except FileNotFoundError:
        return {}
    profiles = data.get("profiles") if isinstance(data, dict) else None
    return profiles if isinstance(profiles, dict) else {}


def load(name: str) -> Profile | None:
    raw = _read().get(name)
    if not isinstance(raw, dict) or not raw.get("url"):
        return None
    return Profile(str(raw["url"]), raw.get("token"), raw.get("organization_id"), raw.get("email"))


def save(name: str, profile: Profile) -> Path:
    """Write the profile, creating the file 0600 (never briefly readable by others: the mode is set at open)."""
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    profiles = _read()
    profiles[name] = asdict(profile)
    path = credentials_path()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"profiles": profiles}, out, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
