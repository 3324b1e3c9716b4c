"""Checking out job sources with the git CLI, from real local repositories."""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path

import pytest

from sailplane.workloads.runs.sources import SourceConfig, SourceError, checkout, redact_url
from tests.runs.gitrepo import GitRepo

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@dataclasses.dataclass
class Origin:
    repo: GitRepo
    c1: str
    c2: str
    c3: str

    @property
    def url(self) -> str:
        return self.repo.url


@pytest.fixture
def repo(tmp_path: Path) -> Origin:
    """main: c1 → c3; tags v1 and v1-annotated at c1; branch 'feature' at c2 (off c1)."""
    r = GitRepo(tmp_path / "origin")
    c1 = r.commit({"job.py": "print('v1')\n"}, "one")
    r.git("tag", "v1")
    r.git("tag", "-a", "v1-annotated", "-m", "annotated")
    r.git("checkout", "--quiet", "-b", "feature")
    c2 = r.commit({"job.py": "print('feature')\n"}, "two")
    r.git("checkout", "--quiet", "main")
    c3 = r.commit({"job.py": "print('v3')\n"}, "three")
    return Origin(r, c1, c2, c3)


def _job(dest: Path) -> str:
    return (dest / "job.py").read_text()


@pytest.mark.parametrize("url_form", ["path", "file-url"])
def test_references(repo: Origin, tmp_path: Path, url_form: str) -> None:
    url = repo.url if url_form == "path" else f"file://{repo.url}"
    dest = tmp_path / "checkout"
    cases = [
        (SourceConfig(url), repo.c3, "v3"),
        (SourceConfig(url, "branch", "main"), repo.c3, "v3"),
        (SourceConfig(url, "branch", "feature"), repo.c2, "feature"),
        (SourceConfig(url, "tag", "v1"), repo.c1, "v1"),
        (SourceConfig(url, "tag", "v1-annotated"), repo.c1, "v1"),
        (SourceConfig(url, "commit", repo.c2), repo.c2, "feature"),
        (SourceConfig(url, "commit", repo.c1[:10]), repo.c1, "v1"),
        (SourceConfig(url, None, "feature"), repo.c2, "feature"),
        (SourceConfig(url, None, repo.c1), repo.c1, "v1"),
        # A pinned snapshot (a retry) wins over the reference, even when the branch moved on.
        (SourceConfig(url, "branch", "main", snapshot_commit=repo.c1), repo.c1, "v1"),
    ]
    for source, sha, content in cases:
        assert checkout(source, dest) == sha, source
        assert _job(dest) == f"print('{content}')\n", source


def test_checkout_replaces_a_previous_one(repo: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "checkout"
    checkout(SourceConfig(repo.url, "tag", "v1"), dest)
    (dest / "stale.txt").write_text("x")
    assert checkout(SourceConfig(repo.url, "branch", "main"), dest) == repo.c3
    assert not (dest / "stale.txt").exists()


def test_from_json() -> None:
    source = SourceConfig.from_json({"url": " https://github.com/acme/x.git ", "provider": "github",
                                     "reference": {"type": "Branch", "value": "main"},
                                     "snapshotCommit": "a1b2c3d4"})
    assert source == SourceConfig("https://github.com/acme/x.git", "branch", "main")
    assert SourceConfig.from_json({"url": "u"}) == SourceConfig("u")
    pinned = dataclasses.replace(source, snapshot_commit="abcdef12")
    assert "abcdef12" in pinned.describe()


def test_errors(repo: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "checkout"
    errors = [
        (SourceConfig(str(tmp_path / "missing")), "does not exist"),
        (SourceConfig(repo.url, "branch", "nope"), "branch 'nope' not found"),
        (SourceConfig(repo.url, "tag", "v9"), "tag 'v9' not found"),
        (SourceConfig(repo.url, "branch", "v1"), "is a tag, not a branch"),
        (SourceConfig(repo.url, "tag", "feature"), "is a branch, not a tag"),
        (SourceConfig(repo.url, "commit", "0" * 40), f"commit '{'0' * 40}' not found"),
        (SourceConfig(repo.url, "commit", "deadbeef"), "commit 'deadbeef' not found"),
        (SourceConfig(repo.url, "commit", "main"), "expected a hexadecimal SHA"),
        (SourceConfig(repo.url, "revision", "main"), "unknown reference type"),
        (SourceConfig(repo.url, "branch", None), "needs a value"),
        (SourceConfig(repo.url, "branch", "--upload-pack=touch /tmp/x"), "invalid reference"),
        (SourceConfig("--upload-pack=touch /tmp/x"), "invalid repository URL"),
        (SourceConfig(""), "url is empty"),
        (SourceConfig(repo.url, None, "nope"), "reference 'nope' not found"),
    ]
    for source, expected in errors:
        with pytest.raises(SourceError, match=expected):
            checkout(source, dest)


def test_credentials_never_in_messages(tmp_path: Path) -> None:
    assert redact_url("https://user:s3cret@example.invalid/x.git") == "https://***@example.invalid/x.git"
    log = io.BytesIO()
    source = SourceConfig("https://user:s3cret@127.0.0.1:9/x.git", "branch", "main")
    with pytest.raises(SourceError) as info:
        checkout(source, tmp_path / "checkout", log=log, timeout=30)
    assert "s3cret" not in str(info.value)
    assert b"s3cret" not in log.getvalue()
    assert "***@127.0.0.1" in str(info.value)


def test_timeout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="timed out"):
        checkout(SourceConfig(str(tmp_path / "missing")), tmp_path / "checkout", timeout=0)
