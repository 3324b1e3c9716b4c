"""The edges of a state machine, checked in one place.

Each owner module (sessions, compute instances, notebooks) keeps its own compare-and-set UPDATE, because
the columns stamped on each state differ; what they share is the table and the check of what a caller
asks for, so a writer cannot ask for an edge the table does not have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class StateTable:
    """`transitions` maps a target state to the states it may be reached from."""

    def __init__(self, noun: str, states: Sequence[str], transitions: Mapping[str, frozenset[str]]) -> None:
        self.noun = noun
        self.states = tuple(states)
        self.transitions = transitions

    def allowed(self, source: str, target: str) -> bool:
        """Whether the table has the edge source → target."""
        return source in self.transitions.get(target, frozenset())

    def sources(self, target: str, source: Sequence[str] | None = None) -> Sequence[str]:
        """The states an UPDATE to `target` may start from: all the table allows, or the caller's `source`
        once checked against it. Raises ValueError for an edge the table does not have (a bug, not input)."""
        allowed_from = self.transitions.get(target)
        if allowed_from is None:
            raise ValueError(f"{self.noun} never go (back) to {target}")
        if source is None:
            return tuple(s for s in self.states if s in allowed_from)
        if not allowed_from.issuperset(source):
            raise ValueError(f"{self.noun} cannot go from {sorted(set(source) - allowed_from)} to {target}")
        return source
