"""Proof that an organization controls an email domain: a TXT record it published in the domain's DNS.

The record lives at `_sailplane-challenge.<domain>` and holds `sailplane-domain-verification=<token>`,
the token being the claim's own random value. Only someone who controls the domain's DNS can publish
it, and that is who may route the domain's users to an identity provider (and who controls their mail
anyway). Lookups go to the configured nameservers (SAILPLANE_DNS_NAMESERVERS) or the system resolver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sailplane.config import Settings
from sailplane.kit.dns import make_resolver

CHALLENGE_LABEL = "_sailplane-challenge"
VALUE_PREFIX = "sailplane-domain-verification="

if TYPE_CHECKING:  # dnspython is imported by the first check (kit.dns)
    import dns.resolver


class DnsUnavailable(Exception):
    """No answer could be had (timeout, refused, server failure): nothing can be concluded, try again."""


def record_name(domain: str) -> str:
    return f"{CHALLENGE_LABEL}.{domain}"


def record_value(token: str) -> str:
    return f"{VALUE_PREFIX}{token}"


def _resolver(settings: Settings) -> dns.resolver.Resolver:
    return make_resolver(settings.dns_nameservers, settings.dns_timeout_seconds)


def txt_values(settings: Settings, name: str) -> list[str]:
    """The TXT strings published at `name` (each record's chunks joined); empty when the name or the record
    does not exist. DnsUnavailable when the servers give no usable answer."""
    import dns.exception
    import dns.name
    import dns.resolver

    qname = dns.name.from_text(name)  # absolute: no search domains appended
    try:
        answer = _resolver(settings).resolve(qname, "TXT", search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except dns.exception.DNSException as exc:  # timeouts, refusals, server failures: no conclusion
        raise DnsUnavailable(type(exc).__name__) from None
    if answer.rrset is None:
        return []
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer.rrset]  # type: ignore[attr-defined]
