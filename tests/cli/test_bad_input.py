"""Bad input, table-driven: each case gets one line naming the problem and exit 2, before
any work is done; no traceback, no "unexpected" error.

Every case runs the installed console script in an empty folder (``.env``, config and
files as the case writes them). The HTTP cases are in ``tests/model/test_serving.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import pairs_cli

SAMPLE = ["--universe", "sample-technology", "--start", "2015-01-01", "--end", "2019-12-31"]


@dataclass(frozen=True)
class Case:
    """A command line, what to write first, and the message it must print."""

    name: str
    args: tuple[str, ...]
    message: str
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def _config(text: str) -> dict[str, bytes]:
    return {"c.yaml": text.encode()}


CASES = [
    Case("env-not-utf8", ("config", "show"), ".env: cannot be read as UTF-8",
         {".env": b"A=\xff\xfe\n"}),
    Case("config-binary", ("--config", "c.yaml", "config", "show"),
         "c.yaml: not UTF-8 text", {"c.yaml": b"\x00\x01\x02\xff"}),
    Case("config-alias-bomb", ("--config", "c.yaml", "config", "show"),
         "aliases (*name) are not allowed",
         _config("a: &a [x, x, x, x, x, x, x, x, x]\n"
                 + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
                           for p, n in zip("abcdefgh", "bcdefghi", strict=True)))),
    Case("one-symbol-universe", ("screen", "--universe", "sample-industrials", "--start",
         "2015-01-01", "--end", "2019-12-31", "--no-log"),
         "universe sample-industrials: 1 symbol(s) (GE); at least 2 are needed"),
    Case("one-symbol-option", ("screen", *SAMPLE, "--symbols", "AAPL", "--no-log"),
         "1 symbol(s) (AAPL); at least 2 are needed"),
    Case("symbols-empty", ("screen", *SAMPLE, "--symbols", ",,,", "--no-log"),
         "no symbol in ',,,'"),
    Case("symbols-twice", ("screen", *SAMPLE, "--symbols", "AAPL,AAPL,MSFT", "--no-log"),
         "symbol(s) AAPL given twice"),
    Case("window-too-short", ("screen", "--universe", "sample-technology", "--start",
         "2015-01-01", "--end", "2015-01-08", "--no-log"), "too-few-observations"),
    Case("output-folder-missing", ("screen", *SAMPLE, "--no-log", "--output", "nope/x.csv"),
         "folder nope does not exist"),
    Case("output-is-a-folder", ("screen", *SAMPLE, "--no-log", "--output", "."),
         "is a directory"),
    Case("fdr-nan", ("screen", *SAMPLE, "--no-log", "--fdr", "nan"), "nan is not a finite"),
    Case("fdr-out-of-range", ("screen", *SAMPLE, "--no-log", "--fdr", "1.5"), "--fdr"),
    Case("unknown-universe", ("screen", "--universe", "nope", "--no-log"),
         "unknown universe 'nope'"),
    Case("unknown-sector", ("train", "--sector", "nope"),
         "no universe is registered for sector 'nope'"),
    Case("all-sectors-and-sector", ("train", "--all-sectors", "--sector", "energy"),
         "--all-sectors trains every active sector"),
    Case("prices-and-sector", ("train", "--prices", "p.csv", "--sector", "energy"),
         "drop --sector", {"p.csv": b"date,A,B\n2020-01-02,1,2\n"}),
    Case("device-cuda", ("--config", "c.yaml", "train"), "ml.device",
         _config("ml: {device: cuda}\n")),
    Case("seed-too-big", ("--config", "c.yaml", "train"), "ml.seed",
         _config(f"ml: {{seed: {2**70}}}\n")),
    Case("threads-too-many", ("--config", "c.yaml", "train"), "ml.torch_threads",
         _config("ml: {torch_threads: 100000}\n")),
    Case("holding-beyond-the-split", ("--config", "c.yaml", "train"),
         "backtest.max_holding 5000 must be below", _config("backtest: {max_holding: 5000}\n")),
    Case("no-active-sector", ("--config", "c.yaml", "train"), "sectors.active",
         _config("sectors: {active: []}\n")),
    Case("stop-inside-entry", ("--config", "c.yaml", "train"), "exit_z < entry_z < stop_z",
         _config("backtest: {entry_z: 2.0, stop_z: 1.5}\n")),
    Case("artifact-root-unwritable", ("--config", "c.yaml", "train"),
         "mlflow.artifact_root file:/proc/nope: cannot write there",
         _config("mlflow: {artifact_root: 'file:/proc/nope'}\n")),
    Case("tables-uri-garbage", ("--config", "c.yaml", "train"),
         "tables.uri 'not a uri' is not a database URI",
         _config("tables: {uri: 'not a uri'}\n")),
    Case("since-overflow", ("report", "pairs", "--since", "999999999d"),
         "reaches back before year 1"),
    Case("since-garbage", ("report", "pairs", "--since", "yesterday"),
         "neither a date"),
    Case("model-missing", ("backtest", "--model", "models:/nope@champion"),
         "no registered model 'nope'"),
    Case("tracking-unreachable", ("--config", "c.yaml", "train"),
         "cannot use MLflow tracking store http://127.0.0.1:1",
         _config("mlflow: {tracking_uri: 'http://127.0.0.1:1'}\n")),
    Case("db-sqlite-folder-missing", ("db", "upgrade", "--uri", "sqlite:///typo/nested/x.db"),
         "the folder "),
    Case("downgrade-bad-revision", ("db", "downgrade", "zzz", "--uri", "sqlite:///x.db"),
         "cannot downgrade mlflow-pairs tables to 'zzz'"),
    Case("duplicate-columns", ("data", "check", "--prices", "p.csv"),
         "column(s) AAPL appear more than once",
         {"p.csv": b"date,AAPL,AAPL,MSFT\n2020-01-02,1,2,3\n"}),
    Case("price-huge", ("data", "check", "--prices", "p.csv"),
         "price outside [1e-06, 1e+09] 1e+300 for AAPL on 2020-01-02",
         {"p.csv": b"date,AAPL,MSFT\n2020-01-02,1e300,3\n2020-01-03,1,3\n"}),
    Case("price-tiny", ("data", "check", "--prices", "p.csv"),
         "1e-300 for AAPL on 2020-01-02",
         {"p.csv": b"date,AAPL,MSFT\n2020-01-02,1e-300,3\n2020-01-03,1,3\n"}),
    Case("price-file-empty", ("data", "check", "--prices", "p.csv"), "cannot read price file",
         {"p.csv": b""}),
    Case("store-retry-not-a-number", ("train",),
         "MLFLOW_PAIRS_STORE_RETRY_SECONDS must be a number of seconds >= 0, got 'soon'",
         env={"MLFLOW_PAIRS_STORE_RETRY_SECONDS": "soon"}),
    Case("score-prices-missing", ("score", "--model", "m@champion", "--prices", "nope.csv"),
         "price file nope.csv does not exist"),
    Case("score-output-extension", ("score", "--model", "m@champion", "--prices", "p.csv",
         "--output", "scores.txt"), "give a file ending in .csv or .parquet",
         {"p.csv": b"date,A,B\n2020-01-02,1,2\n"}),
    Case("score-model-missing", ("score", "--model", "nope@champion", "--prices", "p.csv"),
         "no registered model 'nope'", {"p.csv": b"date,A,B\n2020-01-02,1,2\n"}),
]  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, tmp_path: Path) -> None:
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
    result = pairs_cli(*case.args, env={**_env(), **case.env}, cwd=tmp_path, timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(errors) == 1, result.stderr
    assert case.message in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    assert "unexpected" not in errors[0]
    # Nothing was started: no MLflow store was created for a command refused up front.
    if case.args[0] in ("train", "screen") or "train" in case.args:
        assert not (tmp_path / "mlruns" / "mlflow.db").exists() or case.name in ("model-missing",)


def test_a_mistyped_sqlite_folder_is_not_created(tmp_path: Path) -> None:
    result = pairs_cli("db", "upgrade", "--uri", "sqlite:///typo/nested/x.db", env=_env(),
                       cwd=tmp_path, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "typo/nested of SQLite database x.db does not exist" in result.stderr
    assert not (tmp_path / "typo").exists()


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`mlflow-pairs universes list | head -1`: no traceback when the reader goes away."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("mlflow-pairs")
    process = subprocess.Popen(
        [str(exe), "universes", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=_env(),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()
    error = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in error
    assert "Error" not in error
