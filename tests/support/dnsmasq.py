"""A real DNS server on loopback: Debian's dnsmasq, answering the TXT records a test publishes.

dnsmasq answers names under `.example` from its own records only (NXDOMAIN for the rest, like an
authoritative server), and refuses every other name (it has no upstream), which is how a test meets a
DNS server that gives no usable answer. It reads TXT records only at start, so publishing a record
restarts it on the same port; the server under test keeps its configured nameserver address.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import dns.nameserver
import dns.resolver

from tests.support.ports import ephemeral_range

READY_NAME = "_ready.dnsmasq.example"


def free_port() -> int:
    """A loopback port free for both UDP and TCP (DNS uses both), below the ephemeral range: the port is chosen when
    the test session starts and bound much later, and an ephemeral one may meanwhile be taken by any server started
    on port 0 (CI failure: dnsmasq "Address already in use")."""
    low, _ = ephemeral_range()
    floor = max(1024, low - 12000)
    for _ in range(200):
        port = random.randrange(floor, low)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port for the DNS server")


def _quoted(value: str) -> str:
    if '"' in value or "\n" in value:
        raise ValueError("TXT values with quotes or newlines are not supported by this helper")
    return f'"{value}"'


class Dnsmasq:
    def __init__(self, port: int, workdir: Path) -> None:
        binary = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)
        if binary is None:
            raise RuntimeError("dnsmasq is needed for the DNS tests: apt-get install dnsmasq-base "
                               "(scripts/test.sh installs it)")
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.records: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def publish(self, name: str, *values: str) -> None:
        """Serve exactly `values` as the TXT records at `name` (none: remove the name)."""
        with self._lock:
            if values:
                self.records[name.rstrip(".").lower()] = list(values)
            else:
                self.records.pop(name.rstrip(".").lower(), None)
            self._restart()

    def add(self, name: str, value: str) -> None:
        """One more TXT record at `name`, next to those already there."""
        with self._lock:
            self.records.setdefault(name.rstrip(".").lower(), []).append(value)
            self._restart()

    def start(self) -> None:
        with self._lock:
            self._restart()

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None

    def _restart(self) -> None:
        self._stop()
        conf = self.workdir / "dnsmasq.conf"
        lines = [f"txt-record={READY_NAME},{_quoted('ready')}"]
        for name, values in sorted(self.records.items()):
            lines += [f"txt-record={name},{_quoted(v)}" for v in values]
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o644)
        self._proc = subprocess.Popen(
            [self.binary, "--keep-in-foreground", f"--port={self.port}", "--listen-address=127.0.0.1",
             "--bind-interfaces", "--no-resolv", "--no-hosts", "--no-poll", "--pid-file=", "--local=/example/",
             f"--conf-file={conf}", "--log-facility=/dev/null", "--cache-size=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", self.port)]
        resolver.lifetime = resolver.timeout = 0.5
        deadline = time.time() + 15
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"dnsmasq exited at start: {err.strip()[:500]}")
            try:
                resolver.resolve(READY_NAME + ".", "TXT", search=False)
                return
            except Exception:  # noqa: BLE001 - not answering yet
                if time.time() > deadline:
                    raise RuntimeError("dnsmasq did not answer within 15 s") from None
                time.sleep(0.05)
