"""A tiny Python package, built as a real wheel and served by a real package index on loopback.

pip installs it over HTTP exactly as it would from PyPI (the index follows PEP 503), so library
tests need no network and prove that what a workload asks for is what its code can import.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

NAME, MODULE, VERSION = "sailplane-testlib", "sailplane_testlib", "1.0"
SOURCE = 'def shout(text):\n    return text.upper() + "!"\n'


@dataclass(frozen=True)
class PackageIndex:
    url: str  # http://127.0.0.1:PORT

    @property
    def index_url(self) -> str:
        return f"{self.url}/simple"

    @property
    def wheel_url(self) -> str:
        return f"{self.url}/{wheel_name()}"


def wheel_name(module: str = MODULE, version: str = VERSION) -> str:
    return f"{module}-{version}-py3-none-any.whl"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(directory: Path, name: str = NAME, version: str = VERSION) -> Path:
    """A pure-Python wheel of a module (METADATA, WHEEL and RECORD as pip expects them)."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": SOURCE.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: sailplane-tests\nRoot-Is-Purelib: true\n"
                               b"Tag: py3-none-any\n"),
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    path = directory / wheel_name(module, version)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for name, data in files.items():
            whl.writestr(name, data)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_package_index(directory: Path, more: Sequence[tuple[str, str]] = ()) -> Iterator[PackageIndex]:
    """Serve the wheel (and wheels of the `(name, version)` pairs in `more`) and a PEP 503 simple index
    for them until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    projects = []
    for name, version in [(NAME, VERSION), *more]:
        wheel = build_wheel(directory, name, version)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        project = directory / "simple" / name
        project.mkdir(parents=True)
        (project / "index.html").write_text(
            f'<!DOCTYPE html><html><body><a href="../../{wheel.name}#sha256={digest}">{wheel.name}</a></body></html>\n')
        projects.append(f'<a href="{name}/">{name}</a>\n')
    (directory / "simple" / "index.html").write_text("".join(projects))

    def handler(*args: object) -> _QuietHandler:
        return _QuietHandler(*args, directory=str(directory))  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield PackageIndex(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
