"""``mlflow models serve`` and ``mlflow models predict`` on the registered model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from tests.conftest import free_port
from tests.model.conftest import MODEL_NAME

pytestmark = pytest.mark.server
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


@pytest.fixture(scope="module")
def served(registered: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                MLFLOW,
                "models",
                "serve",
                "-m",
                f"models:/{MODEL_NAME}@champion",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=registered["env"],
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise AssertionError(f"scoring server did not start:\n{log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _expected(
    registered: dict[str, Any], frame: pd.DataFrame, params: dict | None = None
) -> pd.DataFrame:
    mlflow.set_tracking_uri(registered["uri"])
    return mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion").predict(frame, params)


def _compare(answer: dict, expected: pd.DataFrame) -> None:
    served = pd.DataFrame(answer["predictions"])
    assert list(served.columns) == list(expected.columns)
    assert served["pair"].tolist() == expected["pair"].tolist()
    assert served["signal"].tolist() == expected["signal"].tolist()
    for column in (
        "hedge_ratio",
        "spread",
        "zscore",
        "garch_sigma",
        "reversion_probability",
        "weight_y",
        "weight_x",
    ):
        np.testing.assert_allclose(
            served[column].astype(float), expected[column], rtol=1e-9, equal_nan=True
        )
    assert (pd.to_datetime(served["date"]) == expected["date"]).all()


def test_ping_and_invocations_match_in_process_predict(
    served: str, registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
    assert requests.get(f"{served}/ping", timeout=10).status_code == 200
    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    expected = _expected(registered, request_prices)
    split = json.loads(wire.to_json(orient="split"))
    split.pop("index", None)
    answer = requests.post(f"{served}/invocations", json={"dataframe_split": split}, timeout=60)
    assert answer.status_code == 200, answer.text
    _compare(answer.json(), expected)
    records = json.loads(wire.to_json(orient="records"))
    answer = requests.post(f"{served}/invocations", json={"dataframe_records": records}, timeout=60)
    assert answer.status_code == 200, answer.text
    _compare(answer.json(), expected)


@pytest.mark.parametrize("layout", ["wide", "long"])
@pytest.mark.parametrize("stamp", ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"], ids=["date", "datetime"])
def test_dates_as_dates_or_datetimes_wide_or_long_through_the_server(
    served: str, registered: dict[str, Any], request_prices: pd.DataFrame, layout: str, stamp: str
) -> None:
    """Over HTTP dates are strings: plain dates or ISO datetimes, wide or long, give the
    in-process answer."""
    expected = _expected(registered, request_prices)
    wire = request_prices.assign(date=request_prices["date"].dt.strftime(stamp))
    if layout == "long":
        wire = wire.melt(id_vars="date", var_name="symbol", value_name="price")
    records = json.loads(wire.to_json(orient="records"))
    answer = requests.post(f"{served}/invocations", json={"dataframe_records": records}, timeout=60)
    assert answer.status_code == 200, answer.text
    _compare(answer.json(), expected)


def test_params_through_the_server(
    served: str, registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    params = {"all_dates": True, "entry_z": 1.0, "min_probability": 0.0}
    answer = requests.post(
        f"{served}/invocations",
        timeout=60,
        json={"dataframe_records": json.loads(wire.to_json(orient="records")), "params": params},
    )
    assert answer.status_code == 200, answer.text
    _compare(answer.json(), _expected(registered, request_prices, params))


def test_missing_symbol_is_http_400_naming_it(served: str, request_prices: pd.DataFrame) -> None:
    wire = request_prices.drop(columns=["AAPL"]).assign(
        date=request_prices["date"].dt.strftime("%Y-%m-%d")
    )
    answer = requests.post(
        f"{served}/invocations",
        timeout=60,
        json={"dataframe_records": json.loads(wire.to_json(orient="records"))},
    )
    assert answer.status_code == 400
    assert "missing symbol(s) AAPL" in answer.json()["message"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"max_holding": -5}, "max_holding must be a whole number of days >= 1, got -5"),
        ({"max_holding": 0}, "max_holding must be a whole number of days >= 1, got 0"),
        ({"entry_z": 5.0}, "exit_z < entry_z < stop_z"),
        ({"min_probability": 1.5}, "min_probability must be in [0, 1]"),
    ],
    ids=["holding-negative", "holding-zero", "entry-beyond-stop", "probability-above-1"],
)
def test_bad_params_are_http_400(
    served: str, request_prices: pd.DataFrame, params: dict[str, Any], named: str
) -> None:
    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    answer = requests.post(
        f"{served}/invocations",
        timeout=60,
        json={"dataframe_records": json.loads(wire.to_json(orient="records")), "params": params},
    )
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["message"]


def test_wrong_param_type_is_http_400(served: str, request_prices: pd.DataFrame) -> None:
    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    answer = requests.post(
        f"{served}/invocations",
        timeout=60,
        json={
            "dataframe_records": json.loads(wire.to_json(orient="records")),
            "params": {"entry_z": "two"},
        },
    )
    assert answer.status_code == 400
    assert "entry_z" in answer.json()["message"]


def test_mlflow_models_predict(
    registered: dict[str, Any], request_prices: pd.DataFrame, tmp_path: Path
) -> None:
    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    (tmp_path / "in.json").write_text(
        json.dumps({"dataframe_split": json.loads(wire.to_json(orient="split"))})
    )
    subprocess.run(
        [
            MLFLOW,
            "models",
            "predict",
            "-m",
            f"models:/{MODEL_NAME}@champion",
            "-i",
            str(tmp_path / "in.json"),
            "-o",
            str(tmp_path / "out.json"),
            "-t",
            "json",
            "--env-manager",
            "local",
        ],
        check=True,
        env=registered["env"],
        timeout=300,
        capture_output=True,
    )
    _compare(json.loads((tmp_path / "out.json").read_text()), _expected(registered, request_prices))


def test_served_garch_sigma_equals_arch_full_history_filter(
    served: str, registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
    from arch import arch_model

    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    answer = requests.post(
        f"{served}/invocations",
        timeout=60,
        json={"dataframe_records": json.loads(wire.to_json(orient="records"))},
    )
    served_sigma = dict(
        zip(
            pd.DataFrame(answer.json()["predictions"])["pair"],
            pd.DataFrame(answer.json()["predictions"])["garch_sigma"],
            strict=True,
        )
    )
    model, prices = registered["model"], registered["prices"]
    for name, part in model.spread_parts_.items():
        garch = model.garch_parts_[name]
        # arch itself: its GARCH recursion over the whole history from the first fitted
        # day, with the fitted parameters and the backcast its fit used (from the
        # training part's residuals about their sample mean, as arch's fit computes it;
        # a near-unit-persistence fit never forgets its start), then its one-day-ahead
        # forecast at the request's last date.
        changes = part.spread(prices).diff().dropna()
        returns = changes.to_numpy() * garch.scale_
        train = changes.index <= pd.Timestamp(model.split_["train"][1])
        volatility = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1).volatility
        params = np.array([garch.params_[k] for k in ("omega", "alpha[1]", "beta[1]")])
        resids = returns - garch.params_["mu"]
        sigma2 = np.empty(len(resids))
        volatility.compute_variance(
            params, resids, sigma2,
            volatility.backcast(returns[train] - returns[train].mean()),
            volatility.variance_bounds(resids),
        )  # fmt: skip
        variance = params[0] + params[1] * resids[-1] ** 2 + params[2] * sigma2[-1]
        assert served_sigma[name] == pytest.approx(np.sqrt(variance) / garch.scale_, rel=1e-6)
