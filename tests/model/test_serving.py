"""``mlflow models serve`` and ``mlflow models predict`` on the registered model."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from mlflow_pairs.jobs import load_panel
from tests.conftest import free_port
from tests.model.conftest import MODEL_NAME, model_path

pytestmark = pytest.mark.server
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


#: The served model's request cap in these tests (the default is 20,000 rows).
MAX_ROWS = 1000


@contextlib.contextmanager
def serve_model(model_uri: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """``mlflow models serve`` on a free loopback port; yields its URL."""
    port = free_port()
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                MLFLOW, "models", "serve", "-m", model_uri, "--env-manager", "local",
                "--host", "127.0.0.1", "-p", str(port),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
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


@pytest.fixture(scope="module")
def served(registered: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**registered["env"], "MLFLOW_PAIRS_MAX_REQUEST_ROWS": str(MAX_ROWS)}
    with serve_model(f"models:/{MODEL_NAME}@champion", env, log) as url:
        yield url


def _expected(
    registered: dict[str, Any], frame: pd.DataFrame, params: dict | None = None
) -> pd.DataFrame:
    mlflow.set_tracking_uri(registered["uri"])
    return mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion").predict(frame, params)


def split_payload(prices: pd.DataFrame) -> dict[str, Any]:
    """Wide prices (a DatetimeIndex) as ``dataframe_split``: ISO dates and plain JSON
    floats (the shortest repr, exact), not ``to_json``'s 10 significant digits."""
    wire = prices.reset_index(names="date")
    wire["date"] = wire["date"].dt.strftime("%Y-%m-%d")
    return {"columns": list(wire.columns), "data": wire.to_numpy().tolist()}


def compare(answer: dict, expected: pd.DataFrame) -> None:
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
    compare(answer.json(), expected)
    records = json.loads(wire.to_json(orient="records"))
    answer = requests.post(f"{served}/invocations", json={"dataframe_records": records}, timeout=60)
    assert answer.status_code == 200, answer.text
    compare(answer.json(), expected)


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
    compare(answer.json(), expected)


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
    compare(answer.json(), _expected(registered, request_prices, params))


# -- bad input over HTTP, table-driven ----------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    """A request made from the 250 good rows (``records``: a list of dicts, changed in
    place by ``change``), the status it must get and what its message must say.

    ``one_line``: the message is the model's own single line. MLflow's scoring server
    checks param types against the signature itself; its message then holds the request's
    data (``Failed to predict data ...``), so those cases check the status and the name.
    """

    name: str
    status: int
    message: str
    params: dict[str, Any] | None = None
    change: Callable[[list[dict[str, Any]]], Any] | None = None
    rows: int = 250
    long: bool = False
    one_line: bool = True


def _set(row: int, column: str, value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(records: list[dict[str, Any]]) -> None:
        records[row][column] = value

    return change


def _every(column: str, value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(records: list[dict[str, Any]]) -> None:
        for record in records:
            record[column] = value

    return change


def _drop(column: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(records: list[dict[str, Any]]) -> None:
        for record in records:
            record.pop(column)

    return change


def _swap(records: list[dict[str, Any]]) -> None:
    records[5], records[6] = records[6], records[5]


def _repeat_date(records: list[dict[str, Any]]) -> None:
    records[5]["date"] = records[4]["date"]


HTTP_CASES = [
    HttpCase("symbol-missing", 400, "missing symbol(s) AAPL", change=_drop("AAPL")),
    HttpCase("holding-negative", 400, "max_holding must be a whole number of days >= 1, got -5",
             params={"max_holding": -5}),
    HttpCase("holding-zero", 400, "max_holding must be a whole number of days >= 1, got 0",
             params={"max_holding": 0}),
    HttpCase("entry-beyond-stop", 400, "exit_z < entry_z < stop_z", params={"entry_z": 5.0}),
    HttpCase("probability-above-1", 400, "min_probability must be in [0, 1]",
             params={"min_probability": 1.5}),
    HttpCase("param-unknown", 400, "unknown param(s) entryz (known: all_dates, entry_z",
             params={"entryz": 2.5}),
    HttpCase("param-unknown-beside-known", 400, "unknown param(s) holding",
             params={"entry_z": 2.5, "holding": 5}),
    HttpCase("param-wrong-type", 400, "entry_z", params={"entry_z": "two"}, one_line=False),
    HttpCase("price-true", 400, "column AAPL holds True on 2016-01-13: true/false is not a price",
             change=_set(5, "AAPL", True)),
    HttpCase("price-column-true", 400, "column MSFT holds", change=_every("MSFT", True)),
    HttpCase("price-true-long", 400, "column price holds True", change=_set(3, "price", True),
             long=True),
    HttpCase("price-text", 400, "column AAPL is not numeric: 'abc' on 2016-01-13",
             change=_set(5, "AAPL", "abc")),
    HttpCase("price-object", 400, "column AAPL is not numeric", change=_set(5, "AAPL", {"a": 1})),
    HttpCase("price-null", 400, "missing price for AAPL on 2016-01-13",
             change=_set(5, "AAPL", None)),
    HttpCase("price-negative", 400, "non-positive price -1 for AAPL on 2016-01-13",
             change=_set(5, "AAPL", -1)),
    HttpCase("date-garbage", 400, "has no valid date: 'garbage'",
             change=_set(5, "date", "garbage")),
    HttpCase("date-repeated", 400, "duplicate date 2016-01-12", change=_repeat_date),
    HttpCase("dates-unsorted", 400, "dates are not in increasing order", change=_swap),
    HttpCase("history-too-short", 400, "5 dates (2016-12-23 on), the model needs at least",
             rows=5),
    HttpCase("rows-over-the-cap", 413, f"{MAX_ROWS + 1} rows, more than the {MAX_ROWS} this "
             "server accepts (set MLFLOW_PAIRS_MAX_REQUEST_ROWS", rows=MAX_ROWS + 1),
]  # fmt: skip


def _records(prices: pd.DataFrame, case: HttpCase) -> list[dict[str, Any]]:
    wire = prices.iloc[-case.rows :].reset_index(names="date")
    wire["date"] = wire["date"].dt.strftime("%Y-%m-%d")
    if case.long:
        wire = wire.melt(id_vars="date", var_name="symbol", value_name="price")
        wire = wire.sort_values(["date", "symbol"], kind="stable")
    records: list[dict[str, Any]] = json.loads(wire.to_json(orient="records"))
    if case.change is not None:
        case.change(records)
    return records


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])
def test_bad_request_is_one_line_with_its_status(
    served: str, registered: dict[str, Any], case: HttpCase
) -> None:
    body: dict[str, Any] = {"dataframe_records": _records(registered["prices"], case)}
    if case.params is not None:
        body["params"] = case.params
    answer = requests.post(f"{served}/invocations", json=body, timeout=60)
    assert answer.status_code == case.status, answer.text
    message = answer.json()["message"]
    assert case.message in message
    assert "Traceback" not in answer.text
    if case.one_line:
        assert "\n" not in message, message
        assert "Failed to predict data" not in message, message


def test_a_refused_unknown_param_leaves_the_next_request_alone(
    served: str, registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
    """MLflow drops undeclared params before the model runs; the model refuses them from
    MLflow's warning, for that request only, even when MLflow then refuses the request
    for another param before the model runs."""
    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    records = json.loads(wire.to_json(orient="records"))
    for params in ({"entryz": 2.5, "entry_z": "two"}, {"entryz": 2.5}):
        answer = requests.post(
            f"{served}/invocations",
            json={"dataframe_records": records, "params": params},
            timeout=60,
        )
        assert answer.status_code == 400, answer.text
    params = {"entry_z": 1.5}
    answer = requests.post(
        f"{served}/invocations", json={"dataframe_records": records, "params": params}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    compare(answer.json(), _expected(registered, request_prices, params))


def test_the_row_cap_is_the_model_config_or_the_environment(
    registered: dict[str, Any], request_prices: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: 20,000 rows by default (saved in the MLmodel file), ``model_config`` or
    ``MLFLOW_PAIRS_MAX_REQUEST_ROWS`` (which wins) changes it, 0 lifts it."""
    from mlflow.exceptions import MlflowException

    from mlflow_pairs import flavor

    mlflow.set_tracking_uri(registered["uri"])
    uri = f"models:/{MODEL_NAME}@champion"
    monkeypatch.delenv(flavor.MAX_REQUEST_ROWS_ENV, raising=False)
    model = mlflow.pyfunc.load_model(uri)
    assert model.metadata.flavors["python_function"]["config"] == {"max_request_rows": 20_000}
    assert len(model.predict(request_prices)) == 2
    small = mlflow.pyfunc.load_model(uri, model_config={"max_request_rows": 100})
    with pytest.raises(MlflowException) as info:
        small.predict(request_prices)
    assert info.value.get_http_status_code() == 413
    assert str(info.value).startswith("model input: 250 rows, more than the 100 this server")
    monkeypatch.setenv(flavor.MAX_REQUEST_ROWS_ENV, "0")
    assert len(mlflow.pyfunc.load_model(uri, model_config={"max_request_rows": 100}).predict(
        request_prices
    )) == 2  # fmt: skip
    monkeypatch.setenv(flavor.MAX_REQUEST_ROWS_ENV, "many")
    with pytest.raises(MlflowException, match="MLFLOW_PAIRS_MAX_REQUEST_ROWS must be a whole"):
        mlflow.pyfunc.load_model(uri)


def test_unknown_param_and_boolean_price_in_process(
    registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(registered["uri"])
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    with pytest.raises(MlflowException, match=r"unknown param\(s\) entryz"):
        model.predict(request_prices, params={"entryz": 2.5})
    flagged = request_prices.astype({"AMD": object})
    flagged.loc[7, "AMD"] = True
    with pytest.raises(MlflowException, match="column AMD holds True") as info:
        model.predict(flagged)
    assert info.value.get_http_status_code() == 400


@pytest.fixture(scope="module")
def served_broken(
    registered: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The model with a fault of its own: a scaler one feature short (as a bug writing
    ``model.json`` would leave it). It loads; every prediction fails inside the model."""
    folder = tmp_path_factory.mktemp("broken") / "model"
    shutil.copytree(model_path(registered), folder)
    document = json.loads((folder / "data" / "model.json").read_text())
    document["scaler"]["mean"] = document["scaler"]["mean"][:-1]
    (folder / "data" / "model.json").write_text(json.dumps(document))
    with serve_model(str(folder), registered["env"], folder.parent / "serve.log") as url:
        yield url


def test_a_fault_of_the_model_is_http_500_not_400(
    served_broken: str, request_prices: pd.DataFrame
) -> None:
    """Only validated input errors are the client's fault (400); the model's own failure
    (here numpy's broadcasting ValueError) is a 500 naming it, on one line."""
    wire = request_prices.assign(date=request_prices["date"].dt.strftime("%Y-%m-%d"))
    answer = requests.post(
        f"{served_broken}/invocations",
        json={"dataframe_records": json.loads(wire.to_json(orient="records"))},
        timeout=60,
    )
    assert answer.status_code == 500, answer.text
    message = answer.json()["message"]
    assert message.startswith("garch_gru model failed with ValueError: operands could not be")
    assert "an internal error, not the request's fault" in message
    assert "\n" not in message
    # Bad input is still the client's fault there: it is refused before the model runs.
    answer = requests.post(
        f"{served_broken}/invocations",
        json={"dataframe_records": json.loads(wire.drop(columns="AAPL").to_json(orient="records"))},
        timeout=60,
    )
    assert answer.status_code == 400, answer.text


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
    compare(json.loads((tmp_path / "out.json").read_text()), _expected(registered, request_prices))


def _arch_forecasts(model: Any, name: str, prices: pd.DataFrame) -> pd.Series:
    """arch itself: its GARCH recursion over the whole history of ``prices`` from the first
    fitted day, with the fitted parameters and the backcast its fit used (from the
    training part's residuals about their sample mean, as arch's fit computes it; a
    near-unit-persistence fit never forgets its start); per date, the one-day-ahead
    forecast of the spread's volatility, in the spread's units."""
    from arch import arch_model

    part, garch = model.spread_parts_[name], model.garch_parts_[name]
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
    forecast = params[0] + params[1] * resids**2 + params[2] * sigma2
    return pd.Series(np.sqrt(forecast) / garch.scale_, index=changes.index)


def test_served_garch_sigma_equals_arch_full_history_filter(
    served: str, registered: dict[str, Any], request_prices: pd.DataFrame
) -> None:
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
    for name in model.spread_parts_:
        expected = _arch_forecasts(model, name, prices).iloc[-1]
        assert served_sigma[name] == pytest.approx(expected, rel=1e-6)


def test_served_garch_sigma_from_the_first_new_day(served: str, registered: dict[str, Any]) -> None:
    """A request of new days only, from the day after the model's data: every date's
    served volatility equals arch's filter over the whole history, the first included
    (its change is measured from the last fitted spread, so its innovation counts)."""
    model = registered["model"]
    full = load_panel(universe="sample-technology", start="2010-01-01").prices
    fitted_end = registered["prices"].index[-1]
    request = full[full.index > fitted_end].iloc[: model.min_history + 20]
    assert request.index[0] == full.index[full.index.get_loc(fitted_end) + 1]
    answer = requests.post(
        f"{served}/invocations",
        json={"dataframe_split": split_payload(request), "params": {"all_dates": True}},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    predictions = pd.DataFrame(answer.json()["predictions"])
    history = full.loc[: request.index[-1]]
    for name in model.spread_parts_:
        rows = predictions[predictions["pair"] == name]
        dates = pd.DatetimeIndex(pd.to_datetime(rows["date"])).tz_localize(None)
        assert dates.equals(request.index)
        expected = _arch_forecasts(model, name, history).loc[dates]
        np.testing.assert_allclose(rows["garch_sigma"].to_numpy(dtype=float), expected, rtol=1e-6)
