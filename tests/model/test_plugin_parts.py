"""A third-party volatility part, registered through the plugin manager, end to end.

The part (``EwmaPart``: RiskMetrics EWMA variance, lambda 0.94) is defined here and
registered by an inline plugin's ``register_volatility_parts`` hook. A model trained with
``garch.part: ewma`` uses it, its volatility output equals an independent EWMA recursion,
and it survives logging to and loading from a real (SQLite) MLflow store and serving by
``mlflow models serve`` (where the same plugin is found as an installed entry point);
once the plugin is gone, loading names the missing part.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
import sys
import warnings
import zipfile
from collections.abc import Iterator
from importlib.metadata import PathDistribution
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from mlflow_pairs import flavor, hookimpl, plugins
from mlflow_pairs._packaging import WheelBuildError, _pack_installed
from mlflow_pairs.config import load_settings
from mlflow_pairs.errors import NotFoundError
from mlflow_pairs.model import GarchGruModel, TrainingConfig
from mlflow_pairs.model.parts import VolatilityPart
from mlflow_pairs.model.volatility import GarchPart, GarchSpec
from mlflow_pairs.plugins import (
    ENTRY_POINT_GROUP,
    PluginConflictError,
    get_model_parts,
    plugin_failures,
    pm,
)
from mlflow_pairs.tracking import MlflowConnection
from tests.cli.test_train import SMALL as TRAIN_SMALL
from tests.cli.test_train import _env
from tests.conftest import mlflow_uris_restored, pairs_cli, write_config
from tests.model.ewma_part import LAMBDA, EwmaPart, EwmaPlugin
from tests.model.simulate import mean_reverting_pairs
from tests.model.test_serving import compare, serve_model, split_payload

PLUGIN = "ewma-parts-test"
N_DAYS = 1100
#: The model is fitted on the first FITTED days; the rest are new to it.
FITTED = 900
PAIRS = [("Y0", "X0"), ("Y1", "X1")]


@pytest.fixture(scope="module")
def ewma_plugin() -> Iterator[None]:
    pm.register(EwmaPlugin(), name=PLUGIN)
    yield
    if pm.has_plugin(PLUGIN):
        pm.unregister(name=PLUGIN)


@pytest.fixture
def no_recorded_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "_failures", {})


@pytest.fixture
def register_inline() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        pm.unregister(name=name)


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return mean_reverting_pairs(7, n_days=N_DAYS, n_pairs=len(PAIRS))


@pytest.fixture(scope="module")
def model(ewma_plugin: None, prices: pd.DataFrame) -> GarchGruModel:
    fitted = GarchGruModel(
        "energy",
        PAIRS,
        garch=GarchSpec(part="ewma"),
        training=TrainingConfig(epochs=2, seed=3, hidden_size=8),
        parts=get_model_parts(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fitted.fit(prices.iloc[:FITTED])


@pytest.fixture(scope="module")
def logged(model: GarchGruModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The model logged with the flavor to a temporary SQLite MLflow store."""
    root = tmp_path_factory.mktemp("ewma-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = write_config(
        root / "config.yaml",
        {"mlflow": {"tracking_uri": uri, "artifact_root": f"file:{root / 'artifacts'}"}},
    )
    # The connection points MLflow's globals at this store: put both back as they were
    # (unset included), so later modules keep theirs.
    with mlflow_uris_restored():
        connection = MlflowConnection(load_settings(config, environ={}))
        with connection.start_run(sector="energy"):
            info = flavor.log_model(model, name="model")
        # Read back from the store into a local folder, loaded from there below.
        local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(root / "back"))
    return {"info": info, "uri": uri, "root": Path(root), "path": local}


def ewma_sigma_oracle(model: GarchGruModel, prices: pd.DataFrame, y: str, x: str) -> pd.Series:
    """The EWMA volatility forecast for the next day, per date, written out plainly: the
    spread with the pair's static hedge, its daily changes, the training window's mean
    square as the starting variance and ``v <- lam v + (1 - lam) change^2``."""
    part = model.spread_parts_[f"{y}/{x}"]
    spread = np.log(prices[y]) - part.hedge_ratio * np.log(prices[x]) - part.intercept
    changes = spread.diff().dropna()
    train = changes.loc[: model.split_["train"][1]]
    variance = float(np.mean(train.to_numpy() ** 2))
    sigma = {}
    for date, change in changes.items():
        variance = LAMBDA * variance + (1 - LAMBDA) * change**2
        sigma[date] = math.sqrt(variance)
    return pd.Series(sigma)


# -- registration ------------------------------------------------------------------------


def test_registered_part_is_listed_by_name(ewma_plugin: None) -> None:
    volatility = get_model_parts()["volatility"]
    assert volatility["ewma"] is EwmaPart
    assert volatility["garch"] is GarchPart  # the built-ins are still there
    assert "egarch" in volatility


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"name": "broken", "fit": lambda self, r, n="": self}, "filter_values"),
        ({"fit": EwmaPart.fit, "extend_state": EwmaPart.extend_state}, "'name'"),
    ],
    ids=["missing-filter_values", "missing-name"],
)
def test_incomplete_part_is_a_failed_plugin_and_not_registered(
    ewma_plugin: None,
    register_inline: list[str],
    no_recorded_failures: None,
    caplog: pytest.LogCaptureFixture,
    body: dict[str, Any],
    missing: str,
) -> None:
    incomplete = type("IncompletePart", (), dict(body))

    class Incomplete:
        @hookimpl
        def register_volatility_parts(self, register):  # type: ignore[no-untyped-def]
            register(incomplete)

    pm.register(Incomplete(), name="incomplete-parts")
    register_inline.append("incomplete-parts")
    with caplog.at_level(logging.WARNING, logger="mlflow_pairs.plugins"):
        volatility = get_model_parts()["volatility"]
    assert "broken" not in volatility
    assert incomplete not in volatility.values()
    assert volatility["ewma"] is EwmaPart  # other plugins are unaffected
    reason = plugin_failures()["incomplete-parts"]
    assert "IncompletePart" in reason
    assert missing in reason
    assert "'incomplete-parts' failed and was skipped" in caplog.text


def test_part_name_taken_by_a_builtin_is_a_conflict(register_inline: list[str]) -> None:
    class Shadow(EwmaPart):
        name = "garch"

    class ShadowPlugin:
        @hookimpl
        def register_volatility_parts(self, register):  # type: ignore[no-untyped-def]
            register(Shadow)

    pm.register(ShadowPlugin(), name="shadow-parts")
    register_inline.append("shadow-parts")
    with pytest.raises(PluginConflictError) as info:
        get_model_parts()
    message = str(info.value)
    assert "'garch'" in message
    assert "'mlflow_pairs.default_plugins.parts'" in message
    assert "'shadow-parts'" in message


# -- the model -----------------------------------------------------------------------------


def test_model_uses_the_plugin_part(model: GarchGruModel) -> None:
    assert set(model.garch_parts_) == {f"{y}/{x}" for y, x in PAIRS}
    for part in model.garch_parts_.values():
        assert type(part) is EwmaPart
        assert isinstance(part, VolatilityPart)
    # The state was carried over the validation and test days, to the last fitted date.
    last = model.garch_parts_["Y0/X0"].state_.dates[-1]
    assert last == np.datetime64(model.split_["test"][1], "ns")


@pytest.mark.parametrize(
    ("start", "stop"),
    [(FITTED - 120, FITTED + 80), (FITTED, N_DAYS)],
    ids=["overlapping-fitted-days", "day-after-fitted-days"],
)
def test_garch_sigma_equals_an_independent_ewma(
    model: GarchGruModel, prices: pd.DataFrame, start: int, stop: int
) -> None:
    request = prices.iloc[start:stop]
    predicted = model.predict(request, all_dates=True)
    for y, x in PAIRS:
        rows = predicted[predicted["pair"] == f"{y}/{x}"]
        dates = pd.DatetimeIndex(rows["date"])
        assert len(dates) == stop - start
        oracle = ewma_sigma_oracle(model, prices, y, x)
        np.testing.assert_allclose(
            rows["garch_sigma"].to_numpy(), oracle.loc[dates].to_numpy(), rtol=1e-10, atol=0
        )


# -- the flavor ----------------------------------------------------------------------------


def test_logged_model_round_trips_through_the_store(
    model: GarchGruModel, logged: dict[str, Any], prices: pd.DataFrame
) -> None:
    request = prices.iloc[FITTED - 60 : FITTED + 40]
    expected = model.predict(request, all_dates=True)

    native = flavor.load_model(logged["path"])
    assert all(type(p) is EwmaPart for p in native.garch_parts_.values())
    pd.testing.assert_frame_equal(native.predict(request, all_dates=True), expected, rtol=1e-12)

    pyfunc = mlflow.pyfunc.load_model(logged["path"])
    served = pyfunc.predict(request.reset_index(names="date"), params={"all_dates": True})
    pd.testing.assert_frame_equal(served, expected, rtol=1e-12)


def test_loading_without_the_plugin_names_the_missing_part(
    logged: dict[str, Any],
) -> None:
    uri = logged["path"]
    plugin = pm.unregister(name=PLUGIN)
    try:
        assert "ewma" not in get_model_parts()["volatility"]
        with pytest.raises(NotFoundError, match=r"uses volatility ewma, which no installed"):
            flavor.load_model(uri)
        with pytest.raises(NotFoundError, match=r"uses volatility ewma, which no installed"):
            mlflow.pyfunc.load_model(uri)
    finally:
        pm.register(plugin, name=PLUGIN)


# -- serving -------------------------------------------------------------------------------


def _install_entry_point(site: Path, wheel_file: bool = True) -> Path:
    """The test plugin as pip would install it: a module and a ``dist-info`` whose
    ``entry_points.txt`` names it in the plugin group, on the server's path; returns the
    ``dist-info`` folder."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "ewma_parts_test_plugin.py").write_text(
        "from tests.model.ewma_part import plugin as plugin\n"
    )
    info = site / "ewma_parts_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ewma-parts-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{PLUGIN} = ewma_parts_test_plugin:plugin\n"
    )
    if wheel_file:
        (info / "WHEEL").write_text(
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
    # pip's RECORD: what a model that uses the part bundles as the plugin's wheel.
    files = [site / "ewma_parts_test_plugin.py", *(f for f in info.iterdir() if f.is_file())]
    lines = []
    for path in files:
        data = path.read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{path.relative_to(site).as_posix()},sha256={digest},{len(data)}")
    (info / "RECORD").write_text("\n".join([*lines, f"{info.name}/RECORD,,"]) + "\n")
    return info


def _plugin_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a subprocess that has the test plugin installed (and no MLflow
    variables of this process): its entry point on PYTHONPATH, the venv's bin first on
    PATH (the scoring server runs `uvicorn` from there)."""
    site = tmp_path / "site"
    _install_entry_point(site)
    root = Path(__file__).resolve().parents[2]
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(root)])
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_an_installed_plugin_is_packed_and_one_without_wheel_metadata_is_refused(
    tmp_path: Path,
) -> None:
    """An installed distribution is packed into a wheel from the files its RECORD lists
    (as a model bundles the plugins it uses); one without its WHEEL file (tags unknown)
    is refused in one line."""
    good = _install_entry_point(tmp_path / "good")
    wheel = _pack_installed(PathDistribution(good), tmp_path)
    assert wheel.name == "ewma_parts_test_plugin-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert "ewma_parts_test_plugin.py" in archive.namelist()
        assert f"{good.name}/WHEEL" in archive.namelist()
    bad = _install_entry_point(tmp_path / "bad", wheel_file=False)
    with pytest.raises(
        WheelBuildError, match=r"^cannot bundle ewma-parts-test-plugin .*no WHEEL file with tags"
    ):
        _pack_installed(PathDistribution(bad), tmp_path)


@pytest.mark.server
def test_mlflow_models_serve_finds_the_part_through_the_plugin(
    model: GarchGruModel, logged: dict[str, Any], prices: pd.DataFrame, tmp_path: Path
) -> None:
    """A scoring server started on the logged model (in a process of its own, with the
    plugin's entry point installed) answers with the EWMA part: its output equals the
    trained model's, and its volatility the independent EWMA recursion."""
    request = prices.iloc[FITTED - 60 : FITTED + 40]
    expected = model.predict(request, all_dates=True)
    env = _plugin_env(tmp_path)
    with serve_model(logged["path"], env, tmp_path / "serve.log") as url:
        answer = requests.post(
            f"{url}/invocations",
            json={"dataframe_split": split_payload(request), "params": {"all_dates": True}},
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    compare(answer.json(), expected)
    served = pd.DataFrame(answer.json()["predictions"])
    for y, x in PAIRS:
        rows = served[served["pair"] == f"{y}/{x}"]
        dates = pd.DatetimeIndex(pd.to_datetime(rows["date"])).tz_localize(None)
        oracle = ewma_sigma_oracle(model, prices, y, x)
        np.testing.assert_allclose(
            rows["garch_sigma"].to_numpy(dtype=float), oracle.loc[dates].to_numpy(), rtol=1e-9
        )


def test_train_picks_the_plugin_part_by_name_from_the_configuration(
    ewma_plugin: None, tmp_path: Path
) -> None:
    """`mlflow-pairs train` with ``garch.part: ewma`` in its configuration finds the part
    through the installed plugin, and the model it registers carries it."""
    env = _plugin_env(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    store = {"tracking_uri": uri, "artifact_root": (tmp_path / "mlruns").as_uri()}
    config = write_config(
        tmp_path / "config.yaml",
        {**TRAIN_SMALL, "garch": {"part": "ewma"}, "mlflow": store},
    )
    result = pairs_cli("--config", str(config), "train", env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    with mlflow_uris_restored():
        connection = MlflowConnection(load_settings(config, environ={}))
        version = connection.list_versions("pairs_trading_gru_garch_technology")[-1]
        run = connection.client.get_run(version.run_id)
        assert run.data.params["config.garch.part"] == "ewma"
        connection.activate()
        loaded = flavor.load_model(f"models:/pairs_trading_gru_garch_technology/{version.version}")
    assert loaded.garch_parts_
    assert all(type(p) is EwmaPart for p in loaded.garch_parts_.values())
