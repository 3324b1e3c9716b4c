"""Row views: a response model's JSON built straight from one row of table columns, the model's fields
deciding the columns, the keys (aliases) and their order.

The fast read paths skip the response models (validating a page of rows into models only to dump them
again was most of a listing's time); deriving the select list and the JSON keys from the model is what
keeps them from drifting apart: a field added to the model is read and shown, or, when no column has its
name, the view fails to build at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, FromClause

from sailplane.kit.clock import iso
from sailplane.kit.db import UTCDateTime
from sailplane.kit.wire_sql import wire_column


@dataclass(frozen=True)
class RowView:
    model: type[BaseModel]
    columns: tuple[ColumnElement[Any], ...]  # the select list, in row order; timestamps in their wire form
    names: tuple[str, ...]  # the attribute (column key) behind each row position
    render: Callable[[Sequence[Any]], dict[str, Any]]  # a row of `columns` → the model's JSON, ready to encode
    _timestamps: frozenset[int]

    def of(self, obj: Any) -> dict[str, Any]:
        """The same JSON from an object with the columns as attributes (an ORM row), timestamps formatted
        here as the database would."""
        return self.render([iso(getattr(obj, name)) if i in self._timestamps else getattr(obj, name)
                            for i, name in enumerate(self.names)])


def row_view(model: type[BaseModel], table: FromClause, *, nested: Mapping[str, type[BaseModel]] | None = None,
             computed: Mapping[str, ColumnElement[Any]] | None = None) -> RowView:
    """The view of `model` over `table`: each field is the table's column of the same name, or an object
    of `nested[field]`'s fields (from the same table), or `computed[field]` (a labelled expression)."""
    columns: list[ColumnElement[Any]] = []
    names: list[str] = []
    timestamps: set[int] = set()

    def layout(of: type[BaseModel]) -> str:
        parts = []
        for name, info in of.model_fields.items():
            key = info.alias or name
            if nested and name in nested:
                parts.append(f"{key!r}: {layout(nested[name])}")
                continue
            if computed and name in computed:
                columns.append(computed[name].label(name))
            elif name in table.c:
                column = table.c[name]
                if isinstance(column.type, UTCDateTime):
                    timestamps.add(len(columns))
                columns.append(wire_column(column))
            else:
                raise LookupError(f"{of.__name__}.{name} has no column in {table.description} (add it to the view)")
            names.append(name)
            parts.append(f"{key!r}: row[{len(columns) - 1}]")
        return "{" + ", ".join(parts) + "}"

    # A dict display compiled once per view, like dataclasses' generated methods: indexing the row by
    # position is the cheapest way to build a page of these.
    source = f"lambda row: {layout(model)}"
    render = eval(source, {})  # built from our models' field aliases, each written by repr()
    return RowView(model, tuple(columns), tuple(names), render, frozenset(timestamps))


def wire_keys(model: type[BaseModel]) -> list[str]:
    """The model's JSON keys (aliases), in order: what a view's output must show."""
    return [info.alias or name for name, info in model.model_fields.items()]
