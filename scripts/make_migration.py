"""Generate an Alembic migration from the models against a scratch SQLite database.

Usage: python scripts/make_migration.py "message" [--initial]
--initial rewrites the single initial migration (only while nothing has been released).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from sailplane.migrations.runner import HERE, alembic_config


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "change"
    initial = "--initial" in sys.argv
    if initial:
        for old in (HERE / "versions").glob("0001_*.py"):
            old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        cfg = alembic_config(url)
        if not initial:
            command.upgrade(cfg, "head")
        rev_id = "0001" if initial else None
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
