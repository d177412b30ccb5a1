"""A small real model, logged and registered in a temporary MLflow store."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_pairs import flavor
from mlflow_pairs.config import load_settings
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.model import GarchGruModel, TrainingConfig
from mlflow_pairs.plugins import features_for_sector
from mlflow_pairs.tracking import MlflowConnection
from tests.conftest import write_config

MODEL_NAME = "pairs_trading_gru_garch_technology"


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A technology model on the bundled prices, registered with alias ``champion``."""
    import mlflow

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = write_config(
        root / "config.yaml",
        {"mlflow": {"tracking_uri": uri, "artifact_root": f"file:{root / 'artifacts'}"}},
    )
    connection = MlflowConnection(load_settings(config, environ={}))
    panel = load_panel(universe="sample-technology", start="2010-01-01", end="2016-12-31")
    model = GarchGruModel(
        "technology",
        [("MSFT", "AAPL"), ("AMD", "MSFT")],
        features_for_sector("technology"),
        training=TrainingConfig(epochs=2, seed=3, hidden_size=8),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(panel.prices)
    example = flavor.example_request(model, panel.prices)
    with connection.start_run(sector="technology"):
        info = flavor.log_model(
            model,
            name="model",
            registered_model_name=MODEL_NAME,
            input_example=example,
            data_hash=panel.content_hash,
        )
    version = connection.list_versions(MODEL_NAME)[0].version
    connection.set_alias(MODEL_NAME, "champion", version)
    previous = mlflow.get_tracking_uri()
    yield {
        "model": model,
        "info": info,
        "connection": connection,
        "uri": uri,
        "prices": panel.prices,
        "example": example,
        "panel": panel,
        "root": root,
        # The venv's bin first: the scoring server runs `uvicorn` from PATH.
        "env": {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
    }
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def request_prices(registered: dict[str, Any]) -> Any:
    """250 recent days in the wide input format, as a client would send them."""
    return registered["prices"].iloc[-250:].reset_index(names="date")


def model_path(registered: dict[str, Any]) -> Path:
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(
            registered["info"].model_uri, tracking_uri=registered["uri"]
        )
    )
