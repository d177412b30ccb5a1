"""The migrations ship in the wheel: an installed package upgrades a database with no
checkout in sight."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_carries_the_migrations_and_they_run_without_a_checkout(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), "-q"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("mlflow_pairs-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for script in ("env.py", "script.py.mako", "versions/pairs_0001_screening_and_performance.py",
                   "versions/pairs_0002_variance_stability.py"):  # fmt: skip
        assert f"mlflow_pairs/db/migrations/{script}" in names

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import mlflow_pairs, sys\n"
        "from mlflow_pairs.db.pairs_schema import migrations_dir, upgrade_pairs_schema\n"
        "print(mlflow_pairs.__file__)\n"
        "print(migrations_dir())\n"
        "print(upgrade_pairs_schema('sqlite:///installed.db').current)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=elsewhere, env=env,
        check=False, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    package, migrations, revision = ran.stdout.split()
    assert Path(package).is_relative_to(tmp_path / "site")
    assert Path(migrations).is_relative_to(tmp_path / "site")
    assert revision == "pairs_0002"
    engine = sa.create_engine(f"sqlite:///{elsewhere / 'installed.db'}")
    with engine.connect() as connection:
        assert "pairs_screening_results" in sa.inspect(connection).get_table_names()
    engine.dispose()
