"""A hostile DNS server on loopback: a real UDP DNS server whose answers a test scripts, as an attacker who owns a
domain can (dnsmasq, in support.dnsmasq, answers the same every time). Each A query for a scripted name takes
the next address of its list, the last one repeating, with a TTL of 0: how a name is "rebound" from an address
a check accepts to one it would refuse. AAAA queries get no answer; other names NXDOMAIN."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class ScriptedDns:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.answers: dict[str, list[str]] = {}
        self.queries: list[tuple[str, str]] = []  # (name, type) as asked
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, name="scripted-dns", daemon=True)

    def start(self) -> ScriptedDns:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.sock.close()

    def script(self, name: str, addresses: list[str]) -> None:
        with self.lock:
            self.answers[name.rstrip(".").lower()] = list(addresses)

    def a_queries(self, name: str) -> int:
        with self.lock:
            return sum(1 for asked, kind in self.queries if asked == name and kind == "A")

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return  # stopped
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - not DNS: ignore, as a server would
                continue
            self.sock.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        with self.lock:
            self.queries.append((name, kind))
            script = self.answers.get(name)
            if script is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                return response
            if kind != "A":
                return response  # the name exists, without records of this type
            address = script.pop(0) if len(script) > 1 else script[0]
        response.answer.append(dns.rrset.from_text(question.name, 0, dns.rdataclass.IN, dns.rdatatype.A, address))
        return response
