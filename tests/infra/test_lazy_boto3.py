"""boto3 is loaded by the first infrastructure call, not by starting the API: it is ~10 MB of every idle server
(bench/api_bench.py's idle RSS target, 150 MB) that a deployment without AWS connections never uses."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_app_starts_without_loading_boto3() -> None:
    code = ("import sys\n"
            "from sailplane.app import create_app\n"
            "import sailplane.cli\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))\n"
            "print(','.join(loaded))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert out.stdout.strip() == ""
