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
from collections.abc import Iterator
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


def wheel_name() -> str:
    return f"{MODULE}-{VERSION}-py3-none-any.whl"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(directory: Path) -> Path:
    """A pure-Python wheel of MODULE (METADATA, WHEEL and RECORD as pip expects them)."""
    dist_info = f"{MODULE}-{VERSION}.dist-info"
    files = {
        f"{MODULE}/__init__.py": SOURCE.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode(),
        f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: sailplane-tests\nRoot-Is-Purelib: true\n"
                               b"Tag: py3-none-any\n"),
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    path = directory / wheel_name()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for name, data in files.items():
            whl.writestr(name, data)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_package_index(directory: Path) -> Iterator[PackageIndex]:
    """Serve the wheel and a PEP 503 simple index for it until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(directory)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    project = directory / "simple" / NAME
    project.mkdir(parents=True)
    (project / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../{wheel.name}#sha256={digest}">{wheel.name}</a></body></html>\n')
    (directory / "simple" / "index.html").write_text(f'<a href="{NAME}/">{NAME}</a>\n')

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
