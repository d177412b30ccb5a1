"""The garch_gru flavor against a real MLflow store: log, register, load, pyfunc."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException

from mlflow_pairs import __version__, flavor
from tests.model.conftest import MODEL_NAME, model_path


def _pyfunc(registered: dict[str, Any]) -> Any:
    mlflow.set_tracking_uri(registered["uri"])
    return mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")


def test_native_round_trip(registered: dict[str, Any], request_prices: pd.DataFrame) -> None:
    mlflow.set_tracking_uri(registered["uri"])
    loaded = flavor.load_model(f"models:/{MODEL_NAME}@champion")
    wide = request_prices.set_index("date")
    pd.testing.assert_frame_equal(
        loaded.predict(wide, all_dates=True), registered["model"].predict(wide, all_dates=True)
    )


def test_pyfunc_in_a_fresh_process_gives_identical_output(
    registered: dict[str, Any], request_prices: pd.DataFrame, tmp_path: Any
) -> None:
    request_prices.to_json(tmp_path / "in.json", orient="split", date_format="iso")
    script = (
        "import sys, pandas as pd, mlflow\n"
        "frame = pd.read_json(sys.argv[1], orient='split')\n"
        f"model = mlflow.pyfunc.load_model('models:/{MODEL_NAME}@champion')\n"
        "model.predict(frame, params={'all_dates': True}).to_json(sys.argv[2], orient='split',"
        " date_format='iso', double_precision=15)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "in.json"), str(tmp_path / "out.json")],
        check=True,
        env=registered["env"],
        timeout=300,
    )
    fresh = pd.read_json(tmp_path / "out.json", orient="split")
    here = _pyfunc(registered).predict(request_prices, params={"all_dates": True})
    assert list(fresh.columns) == list(here.columns)
    assert (pd.to_datetime(fresh["date"]).dt.tz_localize(None) == here["date"]).all()
    for column in ("spread", "zscore", "garch_sigma", "reversion_probability", "weight_y"):
        np.testing.assert_allclose(fresh[column], here[column], rtol=1e-12, equal_nan=True)
    assert fresh["signal"].tolist() == here["signal"].tolist()


def test_pyfunc_accepts_wide_and_long_input(
    registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
    model = _pyfunc(registered)
    wide = model.predict(request_prices)
    long = request_prices.melt(id_vars="date", var_name="symbol", value_name="price")
    pd.testing.assert_frame_equal(wide, model.predict(long))
    native = registered["model"].predict(request_prices.set_index("date"))
    pd.testing.assert_frame_equal(wide, native)
    assert list(wide.columns) == list(flavor.OUTPUT_COLUMNS)


def test_pyfunc_accepts_string_or_datetime_dates_wide_or_long(
    registered: dict[str, Any], request_prices: pd.DataFrame, tmp_path: Any
) -> None:
    """What a client sends: dates as datetimes, as ISO strings, or as `pd.read_csv` reads
    them without parse_dates (pandas 3's string dtype, which MLflow's datetime
    enforcement refused), wide or long: the same frame every time."""
    model = _pyfunc(registered)
    expected = model.predict(request_prices, params={"all_dates": True})
    request_prices.to_csv(tmp_path / "prices.csv", index=False)
    as_read = pd.read_csv(tmp_path / "prices.csv")
    assert not pd.api.types.is_datetime64_any_dtype(as_read["date"])
    iso = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    for frame in (as_read, iso, iso.astype({"date": object})):
        for shaped in (frame, frame.melt(id_vars="date", var_name="symbol", value_name="price")):
            got = model.predict(shaped, params={"all_dates": True})
            pd.testing.assert_frame_equal(got, expected)


def test_a_missing_sector_plugin_is_named_with_its_version(
    registered: dict[str, Any],
) -> None:
    """The MLmodel file records which distribution provided each plugin feature; loading
    without it says what to install (it said only "install the sector plugin")."""
    from mlflow_pairs.errors import NotFoundError
    from mlflow_pairs.plugins import list_plugins, pm

    path = model_path(registered)
    sources = yaml.safe_load((path / "MLmodel").read_text())["flavors"]["garch_gru"][
        "plugin_sources"
    ]
    assert sources["feature:tech_jump_intensity"] == "mlflow-pairs-technology==0.1.0"
    name = next(i.name for i in list_plugins() if i.distribution == "mlflow-pairs-technology")
    plugin = pm.unregister(name=name)
    try:
        with pytest.raises(NotFoundError, match=r"pip install mlflow-pairs-technology==0\.1\.0"):
            flavor.load_model(str(path))
    finally:
        pm.register(plugin, name=name)


def test_params_override_thresholds(
    registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
    model = _pyfunc(registered)
    loose = model.predict(
        request_prices,
        params={"entry_z": 0.2, "exit_z": 0.1, "min_probability": 0.0, "all_dates": True},
    )
    strict = model.predict(
        request_prices, params={"entry_z": 9.0, "stop_z": 10.0, "all_dates": True}
    )
    assert (strict["signal"] == 0).all()
    assert (loose["signal"] != 0).sum() > 0


@pytest.mark.parametrize(
    ("mutate", "params", "named"),
    [
        (lambda f: f.drop(columns=["AMD"]), None, "missing symbol(s) AMD"),
        (lambda f: f.iloc[-20:], None, "needs at least"),
        (
            lambda f: f.assign(MSFT=f["MSFT"].where(f.index != f.index[-3])),
            None,
            "missing price for MSFT on",
        ),
        (lambda f: f.iloc[::-1], None, "not in increasing order"),
        (lambda f: pd.concat([f, f.iloc[[-1]]]), None, "duplicate date"),
        (lambda f: f, {"entry_z": "wide"}, "entry_z"),
        (lambda f: f, {"all_dates": 3}, "all_dates"),
    ],
    ids=["missing-symbol", "short", "nan", "unsorted", "duplicate", "param-type", "param-bool"],
)
def test_bad_input_is_invalid_parameter_value(
    registered: dict[str, Any],
    request_prices: pd.DataFrame,
    mutate: Any,
    params: Any,
    named: str,
) -> None:
    with pytest.raises(MlflowException) as info:
        _pyfunc(registered).predict(mutate(request_prices), params=params)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert named in info.value.message


def test_predict_is_safe_from_several_threads(
    registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
    model = _pyfunc(registered)
    requests = [request_prices.iloc[i : i + 200].reset_index(drop=True) for i in range(0, 40, 5)]
    serial = [model.predict(r, params={"all_dates": True}) for r in requests]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(
            pool.map(lambda r: model.predict(r, params={"all_dates": True}), requests * 3)
        )
    for i, result in enumerate(parallel):
        pd.testing.assert_frame_equal(result, serial[i % len(requests)])


def test_mlmodel_records_provenance_and_requirements(registered: dict[str, Any]) -> None:
    path = model_path(registered)
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    conf = mlmodel["flavors"]["garch_gru"]
    assert conf["flavor_version"] == flavor.FLAVOR_VERSION
    assert conf["sector"] == "technology"
    assert conf["pairs"] == ["MSFT/AAPL", "AMD/MSFT"]
    assert conf["features"] == registered["model"].feature_names
    assert conf["training_data_hash"] == registered["panel"].content_hash
    assert conf["min_history"] == registered["model"].min_history
    assert conf["data_end"] == f"{registered['prices'].index[-1]:%Y-%m-%d}"
    assert conf["plugin_versions"]["mlflow-pairs"] == __version__
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow_pairs.flavor"
    signature = mlmodel["signature"]
    assert {p["name"] for p in json.loads(signature["params"])} >= {"entry_z", "all_dates"}
    requirements = (path / "requirements.txt").read_text().split()
    import torch

    names = {r.split("==")[0]: r.split("==")[1] for r in requirements if "==" in r}
    wheels = [r for r in requirements if r.startswith("wheels/")]
    # What no index has is bundled as wheels, by relative path; public packages pinned.
    assert any(w.startswith(f"wheels/mlflow_pairs-{__version__}-") for w in wheels), wheels
    assert all((path / w).is_file() for w in wheels)
    assert "mlflow-pairs" not in names
    assert names["torch"] == torch.__version__.split("+")[0]
    assert "+" not in names["torch"]
    assert {"arch", "pandas", "numpy", "mlflow"} <= set(names)
    if "tech_jump_intensity" in conf["features"]:
        assert any(w.startswith("wheels/mlflow_pairs_technology-") for w in wheels), wheels
        assert not any("energy" in w for w in wheels)  # not a technology feature
    # No pickle: the data is JSON and a state_dict.
    assert sorted(p.name for p in (path / "data").iterdir()) == ["gru.pt", "model.json"]
    assert (path / "serving_input_example.json").exists()


def test_weights_load_with_weights_only(registered: dict[str, Any]) -> None:
    import torch

    state = torch.load(model_path(registered) / "data" / "gru.pt", weights_only=True)
    assert set(state) >= {"head.weight", "head.bias"}


def test_epoch_metrics_are_logged_as_training_curves(registered: dict[str, Any]) -> None:
    from mlflow_pairs.model import GarchGruModel, TrainingConfig
    from mlflow_pairs.tracking.train_run import finite_metrics

    connection = registered["connection"]
    model = GarchGruModel(
        "technology",
        [("MSFT", "AAPL")],
        [],
        training=TrainingConfig(epochs=3, seed=1, early_stopping_patience=5),
    )
    with connection.start_run(sector="technology") as run:
        model.fit(
            registered["prices"],
            on_epoch=lambda epoch, m: mlflow.log_metrics(finite_metrics(m, "epoch_"), step=epoch),
        )
    client = connection.client
    for name in ("loss", "val_loss", "f1", "accuracy", "precision", "recall", "auc"):
        history = client.get_metric_history(run.info.run_id, f"epoch_{name}")
        assert [m.step for m in history] == list(range(len(model.sequence_.history_)))
        assert [m.value for m in history] == pytest.approx(
            [h[name] for h in model.sequence_.history_]
        )
