"""Wall time of the main job: ``mlflow-pairs train`` with the default configuration on the
bundled sample, on a fresh embedded store (the README's demo).

    python benchmarks/demo.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    exe = Path(sys.executable).with_name("mlflow-pairs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with tempfile.TemporaryDirectory() as home:
        start = time.perf_counter()
        result = subprocess.run(
            [str(exe), "train"], cwd=home, env=env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
    print(result.stdout.strip())
    if result.returncode:
        print(result.stderr.strip()[-2000:])
    print(
        f"\nmlflow-pairs train (defaults, fresh store): {wall:.1f} s wall on "
        f"{os.cpu_count()} CPUs; target < 180 s; exit status {result.returncode}"
    )


if __name__ == "__main__":
    main()
