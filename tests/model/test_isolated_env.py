"""The registered model restored in an environment built from its own files.

A production host has MLflow and uv, not this checkout: ``mlflow models predict`` and
``mlflow models serve`` with ``--env-manager uv`` build the model's environment from its
``requirements.txt``, which must name only what an index has or what the model bundles
(``wheels/``). The MLflow commands here run in a separate virtual environment that has
MLflow but cannot import ``mlflow_pairs``, from a working directory outside the checkout,
with no ``PYTHONPATH``. uv takes torch's CPU wheel from pip's find-links folder when the
machine has one (``UV_FIND_LINKS``), everything else from PyPI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from tests.conftest import free_port
from tests.model.conftest import MODEL_NAME, model_path

CHECKOUT = Path(__file__).resolve().parents[2]
MODEL_URI = f"models:/{MODEL_NAME}@champion"
NUMERIC = (
    "hedge_ratio",
    "spread",
    "zscore",
    "garch_sigma",
    "reversion_probability",
    "weight_y",
    "weight_x",
)


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: it is in the dev extra (pip install -e '.[dev]')")
    return found


def _find_links() -> str | None:
    """Where pip looks for local wheels (this machine's torch CPU wheel), for uv."""
    value = os.environ.get("UV_FIND_LINKS") or os.environ.get("PIP_FIND_LINKS")
    if not value:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.find-links"],
            capture_output=True,
            text=True,
            check=False,
        )
        value = result.stdout.strip() if result.returncode == 0 else ""
    links = [v for v in re.split(r"[\s,]+", value) if v]
    return ",".join(links) or None


@pytest.fixture(scope="module")
def isolated(registered: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A client virtual environment with MLflow (and uv) but not mlflow_pairs, the
    environment variables to run it with and a working directory outside the checkout."""
    uv = _uv()
    root = tmp_path_factory.mktemp("isolated")
    client = root / "client"
    base_env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    links = _find_links()
    if links:
        base_env["UV_FIND_LINKS"] = links
    # Never a managed-Python download: the model's Python is the one running this test.
    base_env["UV_PYTHON_DOWNLOADS"] = "never"
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(client)],
        check=True,
        env=base_env,
        timeout=120,
    )
    python = client / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), f"mlflow=={mlflow.__version__}"],
        check=True,
        env=base_env,
        timeout=300,
    )
    (client / "bin" / "uv").symlink_to(uv)
    ours = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    path = [
        str(client / "bin"),
        str(Path(sys.base_prefix) / "bin"),  # uv venv --python=X.Y.Z finds the same Python
        *(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in ours),
    ]
    env = {
        **base_env,
        "PATH": os.pathsep.join(path),
        "MLFLOW_TRACKING_URI": registered["uri"],
        "MLFLOW_ENV_ROOT": str(root / "envs"),
    }
    work = root / "work"
    work.mkdir()
    probe = subprocess.run(
        [str(python), "-c", "import mlflow_pairs"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0, "the client environment must not see mlflow_pairs"
    assert "No module named 'mlflow_pairs'" in probe.stderr
    return {"python": str(python), "env": env, "cwd": work, "root": root}


def _mlflow(isolated: dict, *args: str) -> list[str]:
    return [isolated["python"], "-m", "mlflow", *args]


def _expected(registered: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    mlflow.set_tracking_uri(registered["uri"])
    return mlflow.pyfunc.load_model(MODEL_URI).predict(frame)


def _compare(predictions: list[dict], expected: pd.DataFrame) -> None:
    got = pd.DataFrame(predictions)
    assert list(got.columns) == list(expected.columns)
    assert got["pair"].tolist() == expected["pair"].tolist()
    assert got["signal"].tolist() == expected["signal"].tolist()
    assert (pd.to_datetime(got["date"]) == expected["date"]).all()
    for column in NUMERIC:
        np.testing.assert_allclose(
            got[column].astype(float), expected[column], rtol=1e-12, atol=1e-12, equal_nan=True
        )


def test_mlflow_models_predict_with_uv(
    registered: dict[str, Any], isolated: dict, tmp_path: Path
) -> None:
    # The model's own serving example, as the issue ran it.
    example = model_path(registered) / "serving_input_example.json"
    shutil.copy(example, tmp_path / "input.json")
    result = subprocess.run(
        _mlflow(
            isolated,
            *("models", "predict", "-m", MODEL_URI, "-t", "json", "--env-manager", "uv"),
            *("-i", str(tmp_path / "input.json"), "-o", str(tmp_path / "out.json")),
        ),
        env=isolated["env"],
        cwd=isolated["cwd"],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    answer = json.loads((tmp_path / "out.json").read_text())
    _compare(answer["predictions"], _expected(registered, registered["example"]))


@pytest.fixture(scope="module")
def served_isolated(isolated: dict) -> Iterator[str]:
    port = free_port()
    log = isolated["root"] / "serve.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            _mlflow(
                isolated,
                *("models", "serve", "-m", MODEL_URI, "--env-manager", "uv"),
                *("--host", "127.0.0.1", "-p", str(port)),
            ),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=isolated["env"],
            cwd=isolated["cwd"],
            start_new_session=True,  # the server runs in a child shell: stop the group
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-4000:]
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(1)
        else:
            raise AssertionError(f"scoring server did not start:\n{log.read_text()[-4000:]}")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.mark.server
def test_mlflow_models_serve_with_uv(
    served_isolated: str,
    registered: dict[str, Any],
    isolated: dict,
    request_prices: pd.DataFrame,
) -> None:
    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    records = json.loads(wire.to_json(orient="records"))
    answer = requests.post(
        f"{served_isolated}/invocations", json={"dataframe_records": records}, timeout=120
    )
    assert answer.status_code == 200, answer.text
    _compare(answer.json()["predictions"], _expected(registered, request_prices))

    missing = [{k: v for k, v in r.items() if k != "AAPL"} for r in records]
    answer = requests.post(
        f"{served_isolated}/invocations", json={"dataframe_records": missing}, timeout=120
    )
    assert answer.status_code == 400, answer.text
    assert "missing symbol(s) AAPL" in answer.json()["message"]

    # The server's environment has our code from the wheels, not from the checkout.
    (env_dir,) = (isolated["root"] / "envs").glob("mlflow-*")
    probe = subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            "-c",
            "import json, mlflow_pairs, mlflow_pairs_technology\n"
            "from importlib.metadata import distribution as d\n"
            "print(json.dumps([mlflow_pairs.__file__, mlflow_pairs_technology.__file__,"
            " d('mlflow-pairs').read_text('direct_url.json')]))",
        ],
        env=isolated["env"],
        cwd=isolated["cwd"],
        capture_output=True,
        text=True,
        check=True,
    )
    package, plugin, direct_url = json.loads(probe.stdout)
    assert Path(package).is_relative_to(env_dir)
    assert Path(plugin).is_relative_to(env_dir)
    assert "editable" not in (direct_url or "")


@pytest.fixture(scope="module")
def dockerfile(isolated: dict) -> Path:
    out = isolated["root"] / "docker"
    subprocess.run(
        _mlflow(
            isolated,
            *("models", "generate-dockerfile", "-m", MODEL_URI, "--output-directory", str(out)),
            *("--env-manager", "virtualenv", "--install-java", "false"),
        ),
        env=isolated["env"],
        cwd=isolated["cwd"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_generated_dockerfile_build_context_is_self_contained(
    dockerfile: Path, registered: dict[str, Any]
) -> None:
    text = (dockerfile / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (\S+) /opt/ml/model$", text, flags=re.MULTILINE)
    assert len(copies) == 1, text
    assert not Path(copies[0]).is_absolute()
    model = dockerfile / copies[0]
    # The image restores the environment as `--env-manager uv` does (files linked into the
    # working directory of pip install -r), so relative wheel paths resolve.
    assert "env_manager='virtualenv'" in text

    wheels = sorted(p.name for p in (model / "wheels").glob("*.whl"))
    assert [w.split("-")[0] for w in wheels] == ["mlflow_pairs", "mlflow_pairs_technology"]
    requirements = (model / "requirements.txt").read_text().split("\n")
    assert [r for r in requirements if r.startswith("wheels/")] == [f"wheels/{w}" for w in wheels]
    pins = [r for r in requirements if r and not r.startswith("wheels/")]
    assert pins
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^\s/]+", p) for p in pins), pins
    names = {p.split("==")[0] for p in pins}
    assert {"mlflow", "torch", "arch", "pandas", "numpy"} <= names
    assert not {"mlflow-pairs", "mlflow-pairs-technology"} & names
    conda = yaml.safe_load((model / "conda.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert [p for p in pip_section if p.startswith("wheels/")] == [f"wheels/{w}" for w in wheels]
    assert yaml.safe_load((model / "python_env.yaml").read_text())["dependencies"] == [
        "-r requirements.txt"
    ]

    # Nothing on this machine: the checkout, the stores and temporary folders. (The
    # Dockerfile's own /tmp/get-pip.py is a path inside the image.)
    host = [str(CHECKOUT), "/work", "file:", str(registered["root"]), str(dockerfile.parent)]
    for name in ("requirements.txt", "conda.yaml", "python_env.yaml"):
        content = (model / name).read_text()
        for needle in [*host, "/tmp", tempfile.gettempdir()]:
            assert needle not in content, f"{name} points outside the model: {needle}"
    for needle in host:
        assert needle not in text, f"the Dockerfile points outside the build context: {needle}"
    sources = re.findall(r"^COPY (\S+) ", text, flags=re.MULTILINE)
    assert sources
    assert not [s for s in sources if Path(s).is_absolute() or ".." in s], sources


def test_logged_requirements_name_the_bundled_wheels(registered: dict[str, Any]) -> None:
    path = model_path(registered)
    requirements = (path / "requirements.txt").read_text().splitlines()
    wheels = [r for r in requirements if r.startswith("wheels/")]
    assert [w.split("/")[1].split("-")[0] for w in wheels] == [
        "mlflow_pairs",
        "mlflow_pairs_technology",
    ]
    assert all((path / w).is_file() for w in wheels)
    assert not [r for r in requirements if r.startswith("mlflow-pairs")]
    # name-version-build-python-abi-platform, the build tag from the contents
    assert all(
        re.fullmatch(r"wheels/[a-z_]+-0\.1\.0-1[0-9a-f]{12}-py3-none-any\.whl", w) for w in wheels
    )


def test_replace_requirements_keeps_everything_else() -> None:
    from mlflow_pairs._packaging import replace_requirements

    bundled = {"mlflow-pairs": "wheels/mlflow_pairs-0.1.0-1abc-py3-none-any.whl"}
    lines = ["Mlflow_Pairs>=0.1", "-c constraints.txt", "torch==2.13.0", "mlflow-pairs==0.1.0"]
    assert replace_requirements(lines, bundled) == [
        bundled["mlflow-pairs"],
        "-c constraints.txt",
        "torch==2.13.0",
    ]


def test_wheels_are_cached_per_process_and_named_by_content() -> None:
    from mlflow_pairs._packaging import wheel_for

    first = wheel_for("mlflow-pairs")
    assert wheel_for("mlflow-pairs") == first
    assert re.fullmatch(r"mlflow_pairs-0\.1\.0-1[0-9a-f]{12}-py3-none-any\.whl", first.name)


def test_a_regular_install_is_packed_from_its_record(tmp_path: Path) -> None:
    """pluggy is a regular (not editable) install: its wheel is the files RECORD lists."""
    import base64
    import csv
    import hashlib
    import io
    import zipfile
    from importlib.metadata import version

    from mlflow_pairs._packaging import wheel_for

    wheel = wheel_for("pluggy")
    assert wheel.name.startswith(f"pluggy-{version('pluggy')}-1")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = list(csv.reader(io.StringIO(archive.read(record).decode())))
        for name, digest, _size in rows:
            if name == record:
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}", name
    assert "pluggy/__init__.py" in names
    assert not [
        n for n in names if "__pycache__" in n or n.endswith(("INSTALLER", "direct_url.json"))
    ]
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"),
            *("--target", str(tmp_path / "site"), str(wheel)),
        ],
        check=True,
    )
    assert (tmp_path / "site" / "pluggy" / "__init__.py").is_file()


def test_save_model_bundles_what_the_requirements_name(
    registered: dict[str, Any], tmp_path: Path
) -> None:
    from mlflow_pairs import flavor

    model = registered["model"]
    flavor.save_model(model, tmp_path / "extra", extra_pip_requirements=["mlflow-pairs-energy"])
    requirements = (tmp_path / "extra" / "requirements.txt").read_text().splitlines()
    wheels = sorted(p.name.split("-")[0] for p in (tmp_path / "extra" / "wheels").glob("*.whl"))
    assert wheels == ["mlflow_pairs", "mlflow_pairs_energy", "mlflow_pairs_technology"]
    assert not [r for r in requirements if r.startswith("mlflow-pairs")]
    # Requirements given in full are respected: nothing of ours named, nothing bundled.
    flavor.save_model(model, tmp_path / "own", pip_requirements=["mlflow", "torch"])
    assert not (tmp_path / "own" / "wheels").exists()
