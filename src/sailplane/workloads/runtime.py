"""What sessions need while the server runs: the compute backends, the session controller and the
Spark Connect gateway, on one event loop in a thread of their own.

The gateway and the controller share that loop (the gateway asks the controller where a session
lives on every call, from memory). It is separate from the ASGI server's loop so neither one's
work (gRPC relays, HTTP requests) can stall the other, whatever loop implementation uvicorn uses.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from sailplane.compute.environments import SparkEnvironments, notebook_environment
from sailplane.compute.nodes import NodeLock, deployment_id
from sailplane.compute.registry import NodeBackends, NodeResources
from sailplane.compute.sandbox import workload_sandbox
from sailplane.config import Settings
from sailplane.gateway.spark_connect import GatewayThread, SparkConnectGateway
from sailplane.gateway.tokens import SigningKeys
from sailplane.kit.db import Database
from sailplane.startup import StartupError
from sailplane.workloads import access
from sailplane.workloads.controller import SessionController
from sailplane.workloads.holders import DatabaseHolderCheck

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)


def node_id(settings: Settings) -> str:
    """This control-plane node's name for the instances its local backend owns."""
    return node_of(settings.data_dir)


def node_of(data_dir: str | Path) -> str:
    """The name of the node of this machine whose data directory this is (also one that is down, found by
    the data directory its processes carry)."""
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    return f"local:{socket.gethostname()[:200]}:{digest}"


class WorkloadRuntime:
    def __init__(self, settings: Settings, db: Database, keys: SigningKeys, tracer: Tracer | None = None) -> None:
        self.settings = settings
        self.keys = keys
        self.node = node_id(settings)
        # The Spark line environments Sail servers and job drivers run in: the default one must be
        # there (scripts/bootstrap.sh installs it; a first start without it installs it now).
        self.environments = SparkEnvironments(settings.spark_envs_dir)
        default = self.environments.env()
        if not default.installed:
            log.warning("installing the %s environment (%s) before the first start", default.line.label, default.path)
            self.environments.install()
        # marimo servers of notebooks run in the notebook environment (installed on a notebook's first start
        # when scripts/bootstrap.sh did not).
        self.notebook_environment = notebook_environment(settings.notebook_envs_dir)
        # User code (Sail servers, drivers, library installs, marimo) runs confined; a broken setup fails here.
        self.sandbox = workload_sandbox(settings, self.environments, (self.notebook_environment.env().path,))
        # Sessions, runs and notebooks get the backends of their cluster from here: one per cluster for the node.
        node_dir = settings.data_dir.resolve()
        self.backends = NodeBackends(NodeResources(node_dir, self.sandbox, self.environments,
                                                   self.notebook_environment))
        deployment = deployment_id(settings.database_url)
        # Where this node runs its processes and which database it serves: its controllers also stop what
        # nodes of this machine and deployment that are down no longer need (compute.nodes).
        self.node_dir, self.deployment = node_dir, deployment
        self.controller = SessionController(
            db, self.backends, node=self.node, interval=settings.controller_interval_seconds,
            start_timeout=settings.compute_start_timeout_seconds, node_dir=node_dir,
            deployment=deployment,
        )
        # Held while this node's compute runs: other nodes of this machine see it is up (compute.nodes).
        self.node_lock = NodeLock(node_dir, deployment)
        self.gateway = SparkConnectGateway(
            keys, self.controller.resolve, resolve_now=self.controller.resolve_now,
            on_activity=self.controller.on_activity,
            on_call_end=self.controller.on_call_end,
            holder_check=DatabaseHolderCheck(db), holder_ttl=settings.gateway_access_cache_seconds,
            tls_cert=settings.gateway_tls_cert, tls_key=settings.gateway_tls_key, tracer=tracer,
        )
        self.controller.forget_upstream = self.gateway.forget_upstream
        self._thread: GatewayThread | None = None
        self.gateway_port: int | None = None

    @property
    def tls(self) -> bool:
        return self.gateway.tls

    @property
    def grpc_endpoint(self) -> str:
        """The address clients dial (`connectionInfo.grpcEndpoint`)."""
        return f"sc://{self.settings.gateway_public_host}:{self.gateway_port}"

    def start(self) -> None:
        """Reconcile this node's instances, start the controller, then open the gateway (blocking)."""
        self.node_lock.acquire()
        thread = GatewayThread(self.gateway)
        thread.start_loop()
        self._thread = thread
        try:
            thread.run(self.controller.start(), timeout=120)
            access.watch(self.controller.sessions_closed)
            host, port = self.settings.gateway_host, self.settings.gateway_port
            try:
                self.gateway_port = thread.run(self.gateway.start(host, port), timeout=30)
            except OSError as exc:
                if not self.settings.gateway_port_fallback or port == 0:
                    reason = os.strerror(exc.errno) if exc.errno else str(exc)
                    raise StartupError(f"the Spark Connect gateway cannot listen on {host}:{port}: {reason} "
                                       "(SAILPLANE_GATEWAY_HOST, SAILPLANE_GATEWAY_PORT)") from exc
                log.warning("gateway port %s is taken; using an OS-chosen port instead", port)
                self.gateway_port = thread.run(self.gateway.start(host, 0), timeout=30)
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float | None = None) -> None:
        """Stop the gateway (running calls get `grace`, default SAILPLANE_GATEWAY_DRAIN_SECONDS, to finish)
        and the controller. Sail instances keep running for the next start to adopt."""
        grace = self.settings.gateway_drain_seconds if grace is None else grace
        thread, self._thread = self._thread, None
        if thread is None:
            self.node_lock.release()
            return
        access.unwatch(self.controller.sessions_closed)
        try:
            thread.run(self.gateway.stop(grace), timeout=grace + 30)
            thread.run(self.controller.stop(), timeout=60)
        finally:
            thread.stop(grace)
            self.node_lock.release()
