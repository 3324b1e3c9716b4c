"""An import-linter contract type the built-in ones lack: no import cycle between any two modules.

`acyclic_siblings` compares packages, and ours still share models both ways (a principal reads org,
team and policy rows; every service reads the principal), so it cannot hold yet. What must hold is
that no module depends on itself through others: a cycle is a module the code has not written yet
(see org.membership, auth.signin). Every import counts, also those inside functions, which is where
cycles used to hide. Registered in pyproject.toml's [tool.importlinter] as `acyclic_modules`.
"""

from __future__ import annotations

import itertools

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Tarjan's strongly connected components of the import graph restricted to `modules`, those of
    more than one module (a cycle), each sorted, in sorted order."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(modules):
        if root in index:
            continue
        # Iterative, so a deep import chain cannot hit the recursion limit.
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if i < len(targets):
                work.append((node, i + 1))
                target = targets[i]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


class AcyclicModulesContract(Contract):
    """Kept when no two modules under `containers` import each other, directly or through others."""

    type_name = "acyclic_modules"
    containers = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        modules: set[str] = set()
        for container in self.containers:  # type: ignore[attr-defined]
            modules |= {container.name} | graph.find_descendants(container.name)
        cycles = []
        for component in strongly_connected(graph, modules):
            members = set(component)
            # One concrete loop through the component, with the lines that make it.
            first = component[0]
            back = sorted(graph.find_modules_directly_imported_by(first) & members)[0]
            chain = graph.find_shortest_chain(importer=back, imported=first) or (back, first)
            loop = [first, *chain]
            steps = [(a, b, graph.get_import_details(importer=a, imported=b)) for a, b in itertools.pairwise(loop)]
            cycles.append({"modules": component, "steps": steps})
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(f"Import cycle between {', '.join(cycle['modules'])}:", bold=True)
            output.new_line()
            for importer, imported, details in cycle["steps"]:
                lines = ", ".join(f"l.{d['line_number']}" for d in details) or "?"
                output.indent_cursor()
                output.print_error(f"{importer} -> {imported} ({lines})", bold=False)
            output.new_line()
