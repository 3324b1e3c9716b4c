"""A stand-in for an EKS cluster's Kubernetes API server: a real HTTPS server on loopback (its own CA, a certificate
for 127.0.0.1), answering `/readyz`, `/version`, `/api/v1/nodes` and `/api/v1/namespaces/kube-system/pods` from a
state the test sets (`nodes`, `pods`, `ready`).

moto's EKS clusters have no API server behind their endpoint, so the tests' moto server (`tests.infra.moto_server`)
reports this server's address and CA as every cluster's `endpoint` and `certificateAuthority` (environment
`SAILPLANE_TEST_EKS_ENDPOINT`, `SAILPLANE_TEST_EKS_CA`): Sailplane reaches it exactly as it would reach EKS, TLS
checked against the CA EKS gives. Each request must carry a bearer token as `aws eks get-token` makes it. A real
API server's authenticator (aws-iam-authenticator) sends the token's presigned GetCallerIdentity to STS; moto's
server does not answer a presigned GET (it routes it to S3), so this one checks what the authenticator checks before
that call: the `k8s-aws-v1.` prefix, a GetCallerIdentity URL of the STS endpoint, the `x-k8s-aws-id` header signed,
temporary credentials (an assumed role's), not expired. Tokens seen are kept (`tokens`) for the tests to read.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PREFIX = "k8s-aws-v1."


def _certificates(directory: Path) -> tuple[bytes, Path, Path]:
    """(the CA's PEM, the server's certificate file, its key file)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-api")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file


def node(name: str, group: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"eks.amazonaws.com/nodegroup": group}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(name: str, ready: bool = True, restarts: int = 0, waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name, "namespace": "kube-system"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": name.split("-")[0], "restartCount": restarts,
                                              "state": state}]}}


class KubeStandIn:
    def __init__(self, directory: Path) -> None:
        ca, cert_file, key_file = _certificates(directory)
        self.ca_data = base64.b64encode(ca).decode()
        self.sts_url: str | None = None  # the STS endpoint tokens must name (the moto server), once known
        self.ready = True
        self.nodes: list[dict[str, Any]] = []
        self.pods: list[dict[str, Any]] = []
        self.tokens: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                refused = standin.refusal(self.headers.get("Authorization") or "")
                if refused:
                    return self._answer(401, {"kind": "Status", "status": "Failure", "message": refused,
                                              "code": 401})
                path = urlsplit(self.path).path
                if path == "/readyz":
                    return self._answer(200 if standin.ready else 500, "ok" if standin.ready else "etcd failed")
                if not standin.ready:
                    return self._answer(503, {"kind": "Status", "code": 503})
                if path == "/version":
                    return self._answer(200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0-eks-standin"})
                if path == "/api/v1/nodes":
                    return self._answer(200, {"kind": "NodeList", "items": standin.nodes})
                if path == "/api/v1/namespaces/kube-system/pods":
                    return self._answer(200, {"kind": "PodList", "items": standin.pods})
                return self._answer(404, {"kind": "Status", "code": 404})

            def _answer(self, status: int, body: Any) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.endpoint = f"https://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def refusal(self, authorization: str) -> str | None:
        """Why the token is refused (None: accepted)."""
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token.startswith(PREFIX):
            return "no EKS bearer token"
        self.tokens.append(token)
        encoded = token[len(PREFIX):]
        try:
            url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except ValueError:
            return "the token is not base64"
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if self.sts_url is None or f"{parts.scheme}://{parts.netloc}" != self.sts_url:
            return f"the token names another STS endpoint: {parts.netloc}"
        if query.get("Action") != "GetCallerIdentity":
            return "the token is not a GetCallerIdentity request"
        if "x-k8s-aws-id" not in query.get("X-Amz-SignedHeaders", "").split(";"):
            return "the token does not sign the cluster's name (x-k8s-aws-id)"
        if not query.get("X-Amz-Credential", "").startswith("ASIA") or not query.get("X-Amz-Security-Token"):
            return "the token is not signed with temporary credentials"
        signed = datetime.datetime.strptime(query.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC)
        if datetime.datetime.now(datetime.UTC) > signed + datetime.timedelta(
                seconds=int(query.get("X-Amz-Expires", "0"))):
            return "the token has expired"
        return None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
