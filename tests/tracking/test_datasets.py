"""Price panels logged as MLflow dataset inputs (lineage in the UI)."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow_pairs.config import load_settings
from mlflow_pairs.data import load_panel
from mlflow_pairs.default_plugins.sample import sample_path
from mlflow_pairs.tracking import MlflowConnection


def test_panel_is_logged_as_a_dataset_input(clean_env: Path) -> None:
    panel = load_panel(universe="sample-energy", start="2021-01-01", end="2021-12-31")
    connection = MlflowConnection(load_settings(environ={}))
    with connection.start_run(sector="energy") as run:
        connection.log_dataset(panel, context="training")
    inputs = connection.client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.name == "sample-energy"
    assert dataset.digest == panel.content_hash[:32]
    assert json.loads(dataset.source)["uri"] == str(sample_path())
    assert json.loads(dataset.profile)["num_rows"] == panel.n_observations == 252
    assert {tag.key: tag.value for tag in inputs[0].tags}["mlflow.data.context"] == "training"
    schema = json.loads(dataset.schema)["mlflow_colspec"]
    assert [column["name"] for column in schema] == ["date", "CVX", "XOM", "RRC"]
