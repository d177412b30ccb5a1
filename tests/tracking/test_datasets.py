"""Price panels logged as MLflow dataset inputs (lineage in the UI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow_pairs.config import load_settings
from mlflow_pairs.default_plugins.sample import sample_path
from mlflow_pairs.jobs import load_panel
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


def _log_panels_in_step(uri: str, barrier: Any, rounds: int, failures: Any) -> None:
    """One process: each round a new panel (a new digest), logged the moment the other
    process logs the same one."""
    import warnings

    import mlflow

    from mlflow_pairs.tracking.datasets import log_price_panel

    warnings.simplefilter("ignore")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("datasets-race")
    failed = 0
    for end in range(rounds):
        panel = load_panel(
            universe="sample-energy", start="2021-01-01", end=f"2021-02-{end + 1:02d}"
        )
        with mlflow.start_run():
            barrier.wait(timeout=60)
            try:
                log_price_panel(panel)
            except Exception:
                failed += 1
    failures.put(failed)


def test_two_processes_logging_the_same_dataset_at_once(tmp_path: Path) -> None:
    """Two runs logging one dataset at the same moment on SQLite: before the fix, one
    insert failed on the unique (experiment, name, digest) key in 3 of 24 runs here (12
    of 30 with bare MLflow calls); now every input is logged."""
    import multiprocessing

    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.set_experiment("datasets-race")
    finally:
        mlflow.set_tracking_uri(None)
    context = multiprocessing.get_context("spawn")
    barrier, failures = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_log_panels_in_step, args=(uri, barrier, 12, failures))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0, 0]
    assert failures.get(timeout=5) + failures.get(timeout=5) == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 24
    assert all(len(r.inputs.dataset_inputs) == 1 for r in runs)
