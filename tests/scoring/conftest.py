"""Two sector models in one registry, and price files to score with them.

The technology champion is the model tests' (``tests/model/conftest.py``); an energy
champion is registered beside it under the configured name pattern, so
``pairs_trading_gru_garch_{sector}@champion`` names both.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from mlflow_pairs import flavor
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.model import GarchGruModel, TrainingConfig
from mlflow_pairs.plugins import features_for_sector
from tests.model.conftest import registered  # noqa: F401  (the technology champion)

PATTERN = "pairs_trading_gru_garch_{sector}@champion"
ENERGY = "pairs_trading_gru_garch_energy"
SECTORS = {"technology": ("AAPL", "AMD", "MSFT"), "energy": ("CVX", "XOM", "RRC")}
#: The scored dates: the models' data end on 2016-12-30.
START, END = "2016-03-01", "2017-03-31"


@pytest.fixture(scope="session")
def scoring(registered: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: F811
    """Both champions, and the sample's six symbols in a long file with a ``sector``
    column, as CSV and as Parquet."""
    connection = registered["connection"]
    panel = load_panel(universe="sample-energy", start="2010-01-01", end="2016-12-31")
    model = GarchGruModel(
        "energy",
        [("XOM", "CVX"), ("RRC", "XOM")],
        features_for_sector("energy"),
        training=TrainingConfig(epochs=2, seed=3, hidden_size=8),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(panel.prices)
    with connection.start_run(sector="energy"):
        flavor.log_model(
            model,
            name="model",
            registered_model_name=ENERGY,
            input_example=flavor.example_request(model, panel.prices),
            data_hash=panel.content_hash,
        )
    connection.set_alias(ENERGY, "champion", connection.list_versions(ENERGY)[0].version)
    folder = tmp_path_factory.mktemp("scoring")
    symbols = [s for group in SECTORS.values() for s in group]
    wide = load_panel(universe="sample-technology", start=START, end=END).prices.join(
        load_panel(universe="sample-energy", start=START, end=END).prices
    )[symbols]
    sector_of = {s: sector for sector, group in SECTORS.items() for s in group}
    long = (
        wide.rename_axis(columns="symbol")
        .stack()
        .rename("price")
        .reset_index()
        .assign(sector=lambda t: t["symbol"].map(sector_of))
    )
    long["date"] = long["date"].dt.strftime("%Y-%m-%d")
    long.to_csv(folder / "prices.csv", index=False)
    long.to_parquet(folder / "prices.parquet", index=False)
    return {
        **registered,
        "models": {"technology": registered["model"], "energy": model},
        "folder": folder,
        "config": Path(registered["root"]) / "config.yaml",
        "long": long,
        "wide": wide,
    }
