"""Plays the browser through an OpenID provider's sign-in: follows redirects, fills the login form and
confirms consent, and stops at our callback URL (which it returns, without calling it)."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import httpx

FORM_RE = re.compile(r"<form[^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", re.S | re.I)
INPUT_RE = re.compile(r"<input[^>]*>", re.I)
ATTR_RE = re.compile(r"(\w+)=\"([^\"]*)\"")


def sign_in_at_provider(authorize_url: str, callback_prefix: str, subject: str) -> str:
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        url = authorize_url
        response = browser.get(url)
        for _ in range(30):
            if response.status_code in (301, 302, 303, 307, 308):
                url = urljoin(url, response.headers["location"])
                if url.startswith(callback_prefix):
                    return url
                response = browser.get(url)
                continue
            match = FORM_RE.search(response.text)
            if response.status_code != 200 or match is None:
                raise AssertionError(f"unexpected page {response.status_code}: {response.text[:500]}")
            action, inner = html.unescape(match.group(1)), match.group(2)
            fields: dict[str, str] = {}
            for tag in INPUT_RE.findall(inner):
                attrs = dict(ATTR_RE.findall(tag))
                if "name" in attrs:
                    fields[attrs["name"]] = html.unescape(attrs.get("value", ""))
            if "login" in fields:
                fields["login"] = subject
            if "password" in fields:
                fields["password"] = "any-password"
            url = urljoin(url, action)
            response = browser.post(url, data=fields)
        raise AssertionError("too many steps at the provider")
