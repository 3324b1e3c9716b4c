"""Write the API's OpenAPI document (``create_app().openapi()``) to a file, for the console's typed client.

The console's TypeScript types are generated from it at build time (openapi-typescript), so the console is
type-checked against the API this checkout serves. No server is started and no database is touched: the app is
only built, with throwaway settings in a temporary directory.
Usage: python scripts/console_openapi.py OUT.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from sailplane.app import create_app
from sailplane.config import Settings


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/openapi.db",
                            secret_key="openapi-dump-only")
        app = create_app(settings, migrate=False)
        document = app.openapi()
        app.state.db.dispose()
        app.state.background_db.dispose()
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    if not out.exists() or out.read_text() != text:  # unchanged: keep the mtime, so the build stays up to date
        out.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
