"""The training job layer in Python: what the CLI and the Spark tasks call."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_pairs.config import Settings, load_settings
from mlflow_pairs.data.errors import DataError
from mlflow_pairs.errors import NotFoundError, UsageError
from mlflow_pairs.jobs import (
    SectorOutcome,
    load_data,
    prepare_training,
    train_sectors,
    universe_for,
)
from tests.conftest import write_config


def _settings(home: Path, sectors: list[str]) -> Settings:
    store = {
        "tracking_uri": f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
        "artifact_root": (home / "mlruns").as_uri(),
    }
    config = write_config(home / "config.yaml", {"mlflow": store, "sectors": {"active": sectors}})
    return load_settings(config, environ={})


def test_universe_for_a_sector() -> None:
    assert universe_for("technology") == "technology"  # the sector plugin's, by name
    assert universe_for("industrials") == "sample-industrials"
    with pytest.raises(NotFoundError, match="no universe is registered for sector 'nope'"):
        universe_for("nope")


def test_a_failing_sector_is_an_outcome_and_the_others_go_on(tmp_path: Path) -> None:
    """Sectors that fail before any run is started: each outcome carries its error, in
    order, reported as soon as it is known; nothing is logged."""
    settings = _settings(tmp_path, ["industrials"])
    connection = prepare_training(settings, ["industrials"])
    seen: list[SectorOutcome] = []
    outcomes = train_sectors(
        settings, ["industrials", "nope"], connection=connection, on_outcome=seen.append
    )
    assert seen == outcomes
    assert [o.sector for o in outcomes] == ["industrials", "nope"]
    assert not any(o.ok for o in outcomes)
    assert isinstance(outcomes[0].error, DataError)
    assert isinstance(outcomes[1].error, NotFoundError)
    reports = [o.report() for o in outcomes]
    assert [(r.status, r.exit_code, r.run_id) for r in reports] == [("failed", 2, None)] * 2
    assert "1 symbol(s) (GE); at least 2 are needed" in str(reports[0].error)
    assert "no universe is registered for sector 'nope'" in str(reports[1].error)
    experiment = connection.client.get_experiment_by_name(settings.mlflow.experiment_name)
    assert experiment is None or not connection.client.search_runs([experiment.experiment_id])


def test_bad_dates_and_sources_are_one_line(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ["technology"])
    with pytest.raises(UsageError, match="start: not a date: 'soon'"):
        load_data(
            settings, universe="technology", prices=None, symbols=None, start="soon", end=None
        )
    with pytest.raises(UsageError, match="exactly one of a universe and a price file"):
        load_data(settings, universe=None, prices=None, symbols=None, start=None, end=None)
