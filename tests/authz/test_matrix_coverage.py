"""The matrices together cover every operation the server publishes, each case names every caller,
and the few operations outside them say why."""

from __future__ import annotations

from tests.authz import (
    test_matrix,
    test_matrix_data,
    test_matrix_identity,
    test_matrix_notebooks,
    test_matrix_notifications,
    test_matrix_workloads,
)
from tests.authz.matrix import CALLERS, Case
from tests.conftest import Mailbox
from tests.infra import test_matrix_infra
from tests.support.server import LiveServer, openapi_document

# Public, or they change who the caller is: tested where they are defined, not per caller.
NOT_IN_MATRIX = {
    "signup": "public; creates a caller",
    "login": "public; creates a caller",
    "logout": "ends the caller's own login",
    "acceptInvitation": "public or any signed-in user; the invite token is the secret",
    "completeMfaLogin": "public; the challenge token is the secret",
    "requestLoginCode": "public; always 202",
    "verifyLoginCode": "public; the emailed code is the secret",
    "verifyEmail": "public; the emailed token is the secret",
    "requestPasswordReset": "public; always 202",
    "resetPassword": "public; the emailed token is the secret",
    "startSsoLogin": "public; redirects to the identity provider",
    "finishSsoLogin": "public; the IdP's redirect target, the state is the secret",
    "exchangeSsoCode": "public; the handoff code and the client's PKCE verifier are the secret",
    "health": "public service endpoint",
    "ready": "public service endpoint",
    "jwks": "public keys",
    "metrics": "service endpoint: loopback clients or the metrics token, not a user's (tests/telemetry)",
}


def all_cases(mailbox: Mailbox) -> list[Case]:
    return [*test_matrix.cases(mailbox), *test_matrix_data.cases(), *test_matrix_workloads.cases(),
            *test_matrix_notebooks.cases(), *test_matrix_notifications.cases(),
            *test_matrix_identity.cases("http://127.0.0.1:9"),
            *test_matrix_infra.cases()]


def test_matrices_cover_every_operation(server: LiveServer, mailbox: Mailbox) -> None:
    doc = openapi_document(f"{server.url}/api/v1")
    published = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    covered = {c.op for c in all_cases(mailbox)}
    assert not covered & set(NOT_IN_MATRIX)
    assert sorted(published - set(NOT_IN_MATRIX) - covered) == [], "operations missing from the matrices"
    assert sorted(covered - published) == [], "cases of operations the server does not publish"


def test_every_case_names_every_caller_once(mailbox: Mailbox) -> None:
    cases = all_cases(mailbox)
    for case in cases:
        assert sorted(case.expected) == sorted(CALLERS), case.name
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "two cases of one operation need different labels"
