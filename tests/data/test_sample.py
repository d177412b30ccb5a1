"""The bundled sample prices, checked against known values of the file."""

from __future__ import annotations

import hashlib

from numpy.testing import assert_allclose

from mlflow_pairs.default_plugins.sample import SAMPLE_SECTORS, sample_path
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.plugins import get_universes

SHA256 = "ee21cac28befb1d0a739a9ceb22184f995394726aa0cfde9a21941d1ac04ac0d"


def test_bundled_file_is_the_documented_one_with_its_licence() -> None:
    assert hashlib.sha256(sample_path().read_bytes()).hexdigest() == SHA256
    licence = sample_path().with_name("LICENSE-skfolio.txt").read_text()
    assert "BSD 3-Clause License" in licence
    assert "The skfolio developers" in licence


def test_technology_universe_first_and_last_rows() -> None:
    panel = load_panel(universe="sample-technology")
    assert panel.symbols == ("AAPL", "AMD", "MSFT")
    assert panel.n_observations == 8313
    assert f"{panel.start:%Y-%m-%d}" == "1990-01-02"
    assert f"{panel.end:%Y-%m-%d}" == "2022-12-28"
    assert_allclose(panel.prices.iloc[0].to_numpy(), [0.264, 4.125, 0.384])
    assert_allclose(panel.prices.iloc[-1].to_numpy(), [125.674, 62.57, 233.434])
    assert panel.source == "sample"
    assert panel.gaps_handled == 0


def test_one_universe_per_sector_in_the_sample() -> None:
    universes = get_universes()
    for sector, symbols in SAMPLE_SECTORS.items():
        universe = universes[f"sample-{sector}"]
        assert universe.sector == sector
        assert universe.symbols == symbols
    all_symbols = sorted(s for symbols in SAMPLE_SECTORS.values() for s in symbols)
    assert len(all_symbols) == 20


def test_date_range_and_symbol_subset() -> None:
    panel = load_panel(
        universe="sample-energy", symbols=["XOM", "CVX"], start="2022-12-27", end="2022-12-28"
    )
    assert panel.symbols == ("XOM", "CVX")
    assert_allclose(panel.prices.to_numpy(), [[108.408, 176.329], [106.627, 173.728]])
