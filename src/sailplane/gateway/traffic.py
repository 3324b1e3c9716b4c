"""What a gateway relayed, apart from the relay itself so that reading it (telemetry) does not load gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field

# The Spark Connect service's methods: counted by name; anything else a client sends counts as "other" (a
# method name is the client's to choose, and each name would be a metric series of its own).
KNOWN_METHODS = frozenset({
    "ExecutePlan", "AnalyzePlan", "Config", "AddArtifacts", "ArtifactStatus", "Interrupt", "ReattachExecute",
    "ReleaseExecute", "ReleaseSession", "FetchErrorDetails", "CloneSession",
})


@dataclass
class Traffic:
    """What one gateway relayed, for the operator's metrics: plain counters, bumped on the gateway's own loop and
    read at scrape time (telemetry.state), so the relay pays an integer addition, not a metrics library."""

    calls: dict[str, int] = field(default_factory=dict)  # relayed calls by Spark Connect method
    refused: dict[str, int] = field(default_factory=dict)  # calls the gateway answered itself, by gRPC status
    bytes_from_clients: int = 0
    bytes_from_sail: int = 0
