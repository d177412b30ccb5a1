"""A third-party volatility part, registered through the plugin manager, end to end.

The part (``EwmaPart``: RiskMetrics EWMA variance, lambda 0.94) is defined here and
registered by an inline plugin's ``register_volatility_parts`` hook. A model trained with
``garch.part: ewma`` uses it, its volatility output equals an independent EWMA recursion,
and it survives logging to and loading from a real (SQLite) MLflow store and serving by
``mlflow models serve`` (where the same plugin is found as an installed entry point);
once the plugin is gone, loading names the missing part.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from mlflow_pairs import flavor, hookimpl, plugins
from mlflow_pairs.config import load_settings
from mlflow_pairs.errors import NotFoundError
from mlflow_pairs.model import GarchGruModel, TrainingConfig
from mlflow_pairs.model.parts import VolatilityPart
from mlflow_pairs.model.volatility import GarchPart, GarchSpec, GarchState
from mlflow_pairs.plugins import (
    ENTRY_POINT_GROUP,
    LOAD_PLUGINS_ENV,
    PluginConflictError,
    get_model_parts,
    plugin_failures,
    pm,
)
from mlflow_pairs.tracking import MlflowConnection
from tests.conftest import mlflow_uris_restored, write_config
from tests.model.simulate import mean_reverting_pairs
from tests.model.test_serving import serve_model

LAMBDA = 0.94
PLUGIN = "ewma-parts-test"
N_DAYS = 1100
#: The model is fitted on the first FITTED days; the rest are new to it.
FITTED = 900
PAIRS = [("Y0", "X0"), ("Y1", "X1")]


def _ewma(variance0: float, resid: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(variance, forecast): ``forecast[t] = lam variance[t] + (1 - lam) resid[t]^2`` and
    ``variance[t + 1] = forecast[t]``; an unknown (NaN) residual leaves the variance as is."""
    n = len(resid)
    variance, forecast = np.empty(n), np.empty(n)
    current = variance0
    for t in range(n):
        variance[t] = current
        r = resid[t]
        if np.isfinite(r):
            current = lam * current + (1 - lam) * r * r
        forecast[t] = current
    return variance, forecast


class EwmaPart:
    """RiskMetrics EWMA variance of the (scaled, zero-mean) daily spread changes.

    ``fit`` estimates nothing but the scale and the starting variance (the training
    window's mean square); like :class:`GarchPart` it keeps the variance path of the
    fitted days and continues it when filtering.
    """

    name: ClassVar[str] = "ewma"
    lam: ClassVar[float] = LAMBDA

    def __init__(self, spec: GarchSpec | None = None) -> None:
        self.spec = spec or GarchSpec(part=self.name)

    def fit(self, returns: pd.Series, name: str = "") -> EwmaPart:
        clean = returns.dropna()
        std = float(clean.std())
        if len(clean) < 2 or not np.isfinite(std) or std == 0:
            raise ValueError(f"pair {name}: EWMA needs varying spread changes")
        self.scale_ = float(10 ** round(-math.log10(std)))
        values = clean.to_numpy(dtype=float) * self.scale_
        self.variance0_ = float(np.mean(values * values))
        variance, _ = _ewma(self.variance0_, values, self.lam)
        self.state_ = GarchState(clean.index.to_numpy(), variance, values)
        return self

    @property
    def long_run_variance(self) -> float:
        return self.variance0_

    def filter_values(
        self, dates: np.ndarray, changes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        state = self.state_
        anchor = int(np.searchsorted(state.dates, dates[0], side="right")) - 1
        if anchor >= 0 and dates[0] > state.dates[anchor] and np.isfinite(changes[0]):
            # A new first day: run from the anchor day, so its change is an innovation.
            variance, resid, forecast = self.filter_values(
                np.r_[state.dates[anchor], dates], np.r_[np.nan, changes]
            )
            return variance[1:], resid[1:], forecast[1:]
        resid = np.asarray(changes, dtype=float) * self.scale_
        if anchor >= 0:
            variance0, resid[0] = state.variance[anchor], state.resid[anchor]
        else:
            variance0, resid[0] = self.long_run_variance, np.nan
        variance, forecast = _ewma(variance0, resid, self.lam)
        return variance, np.where(np.isfinite(resid), resid, 0.0), forecast

    def extend_state(self, returns: pd.Series) -> None:
        last = self.state_.dates[-1]
        following = returns[returns.index >= last]
        if len(following) < 2 or following.index[0] != last:
            return
        variance, resid, _ = self.filter_values(
            following.index.to_numpy(), following.to_numpy(dtype=float)
        )
        self.state_ = GarchState(
            np.r_[self.state_.dates, following.index.to_numpy()[1:]],
            np.r_[self.state_.variance, variance[1:]],
            np.r_[self.state_.resid, resid[1:]],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "scale": self.scale_,
            "variance0": self.variance0_,
            "state": {
                "dates": [str(np.datetime_as_string(d, unit="D")) for d in self.state_.dates],
                "variance": self.state_.variance.tolist(),
                "resid": self.state_.resid.tolist(),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EwmaPart:
        part = cls(GarchSpec(**data["spec"]))
        part.scale_ = float(data["scale"])
        part.variance0_ = float(data["variance0"])
        state = data["state"]
        part.state_ = GarchState(
            np.array(state["dates"], dtype="datetime64[ns]"),
            np.array(state["variance"], dtype=float),
            np.array(state["resid"], dtype=float),
        )
        return part


class EwmaPlugin:
    @hookimpl
    def register_volatility_parts(self, register: Callable[[type], None]) -> None:
        register(EwmaPart)


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


def _install_entry_point(site: Path) -> None:
    """The test plugin as an installed distribution would be: a module and a ``dist-info``
    whose ``entry_points.txt`` names it in the plugin group, on the server's path."""
    (site / "ewma_parts_test_plugin.py").write_text(
        "from tests.model.test_plugin_parts import EwmaPlugin\n\nplugin = EwmaPlugin()\n"
    )
    info = site / "ewma_parts_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ewma-parts-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{PLUGIN} = ewma_parts_test_plugin:plugin\n"
    )


@pytest.mark.server
def test_mlflow_models_serve_finds_the_part_through_the_plugin(
    model: GarchGruModel, logged: dict[str, Any], prices: pd.DataFrame, tmp_path: Path
) -> None:
    """A scoring server started on the logged model (in a process of its own, with the
    plugin's entry point installed) answers with the EWMA part: its output equals the
    trained model's, and its volatility the independent EWMA recursion."""
    site = tmp_path / "site"
    site.mkdir()
    _install_entry_point(site)
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != LOAD_PLUGINS_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(root)])
    # The venv's bin first: the scoring server runs `uvicorn` from PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    request = prices.iloc[FITTED - 60 : FITTED + 40]
    expected = model.predict(request, all_dates=True)
    wire = request.reset_index(names="date")
    wire["date"] = wire["date"].dt.strftime("%Y-%m-%d")
    # Plain JSON floats (shortest repr, exact), not to_json's 10 significant digits.
    split = {"columns": list(wire.columns), "data": wire.to_numpy().tolist()}
    with serve_model(logged["path"], env, tmp_path / "serve.log") as url:
        answer = requests.post(
            f"{url}/invocations",
            json={"dataframe_split": split, "params": {"all_dates": True}},
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    served = pd.DataFrame(answer.json()["predictions"])
    assert served["pair"].tolist() == expected["pair"].tolist()
    assert served["signal"].tolist() == expected["signal"].tolist()
    for column in ("spread", "zscore", "garch_sigma", "reversion_probability"):
        np.testing.assert_allclose(
            served[column].astype(float), expected[column], rtol=1e-9, equal_nan=True
        )
    for y, x in PAIRS:
        rows = served[served["pair"] == f"{y}/{x}"]
        dates = pd.DatetimeIndex(pd.to_datetime(rows["date"])).tz_localize(None)
        oracle = ewma_sigma_oracle(model, prices, y, x)
        np.testing.assert_allclose(
            rows["garch_sigma"].to_numpy(dtype=float), oracle.loc[dates].to_numpy(), rtol=1e-9
        )
