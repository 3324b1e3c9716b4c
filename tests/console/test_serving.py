"""`sailplane serve` answers the console at `/`: built files, index.html for every page path (deep links), and
the API, docs, metrics and health endpoints unchanged; without a build, a page saying how to build it."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sailplane.app import create_app
from tests.conftest import make_settings

INDEX = ('<!doctype html><html><head><title>Sailplane</title></head>'
         '<body><div id="root"></div><script type="module" src="/assets/app-1a2b.js"></script>')


PLAINTEXT = '<meta name="sailplane-gateway-tls" content="false">'


def _client(tmp_path: Path, console_dir: Path, **settings: object) -> TestClient:
    # No lifespan (no `with`): nothing here needs the database or the background services.
    return TestClient(create_app(make_settings(tmp_path / "data", f"sqlite:///{tmp_path}/db.sqlite", None,
                                               console_dir=console_dir, **settings)))


def _dist(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "app-1a2b.js").write_text("console.log('console')")
    (dist / "assets" / "app-1a2b.js.gz").write_bytes(gzip.compress(b"console.log('console')"))
    return dist


@pytest.fixture
def built(tmp_path: Path) -> Iterator[TestClient]:
    dist = _dist(tmp_path)
    (tmp_path / "secret.txt").write_text("not for the browser")
    yield _client(tmp_path, dist)


def test_pages_are_the_spa_and_assets_are_files(built: TestClient) -> None:
    for path in ("/", "/teams", "/sessions/ABC123", "/signin?next=%2Fteams"):
        r = built.get(path)
        assert r.status_code == 200, path
        assert r.text == INDEX.replace("</head>", PLAINTEXT + "</head>")
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in r.headers["content-security-policy"]
    asset = built.get("/assets/app-1a2b.js")
    assert asset.status_code == 200 and asset.text == "console.log('console')"
    assert "immutable" in asset.headers["cache-control"]
    assert built.head("/teams").status_code == 200


def test_assets_go_compressed_to_browsers_that_accept_gzip(built: TestClient) -> None:
    zipped = built.get("/assets/app-1a2b.js", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text == "console.log('console')"  # decoded
    assert zipped.headers["content-type"].startswith("text/javascript")
    plain = built.get("/assets/app-1a2b.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == "console.log('console')"


def test_a_missing_file_is_a_404_not_the_page(built: TestClient) -> None:
    r = built.get("/assets/app-old.js")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_well_known_uris_and_json_callers_get_a_404_not_the_page(built: TestClient) -> None:
    """An SSO client probing a server for /.well-known/openid-configuration must learn it is no provider, and an
    API client asking for JSON must not get the console's HTML."""
    for path, accept in (("/.well-known/openid-configuration", "*/*"), ("/.well-known/security.txt", "text/html"),
                         ("/teams", "application/json")):
        r = built.get(path, headers={"Accept": accept})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
    assert built.get("/teams", headers={"Accept": "text/html,application/xhtml+xml"}).status_code == 200


def test_no_file_outside_the_build_is_served(built: TestClient) -> None:
    for path in ("/../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
        r = built.get(path)
        assert "not for the browser" not in r.text, path


def test_hostile_paths_get_the_input_guards_answer(built: TestClient) -> None:
    r = built.get("/teams%00")
    assert r.status_code == 422 and r.json()["error"]["code"]


def test_the_api_and_service_endpoints_keep_their_answers(built: TestClient) -> None:
    unknown = built.get("/api/v1/no-such-thing")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert built.get("/api/v1/auth/login").status_code == 405  # a POST-only API route: not the page
    assert built.get("/healthz").json() == {"status": "ok"}
    assert built.get("/api/v1/openapi.json").json()["info"]["title"] == "Sailplane"
    assert "swagger" in built.get("/api/v1/docs").text.lower()
    assert built.get("/.well-known/jwks.json").json()["keys"]
    metrics = built.get("/metrics")  # the test client is not on loopback: the endpoint's own refusal
    assert metrics.status_code == 403 and metrics.json()["error"]["code"]
    # Other methods on a page path are not the console's.
    r = built.post("/teams", json={})
    assert r.status_code in (404, 405) and "error" in r.json()


def test_without_a_build_the_page_says_how_to_build_it(tmp_path: Path) -> None:
    client = _client(tmp_path, tmp_path / "missing")
    r = client.get("/")
    assert r.status_code == 503 and "scripts/build_console.sh" in r.text
    assert client.get("/sessions").status_code == 503
    assert client.get("/healthz").json() == {"status": "ok"}
    # What is not a page is a 404 built or not: an SSO client probing for a provider learns this is none.
    for path, accept in (("/.well-known/openid-configuration", "*/*"), ("/teams", "application/json"),
                         ("/assets/app.js", "*/*")):
        r = client.get(path, headers={"Accept": accept})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path


def test_the_page_says_whether_the_gateway_speaks_tls(tmp_path: Path) -> None:
    """The PySpark snippet needs `use_ssl=true` exactly when the gateway has a certificate."""
    client = _client(tmp_path, _dist(tmp_path), gateway_tls_cert=tmp_path / "cert.pem",
                     gateway_tls_key=tmp_path / "key.pem")
    assert '<meta name="sailplane-gateway-tls" content="true"></head>' in client.get("/sessions/X").text
