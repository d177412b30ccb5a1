"""Shared data of the screening tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.synthetic import planted_universe


@pytest.fixture(scope="session")
def universe() -> tuple[pd.DataFrame, dict[str, str]]:
    """300 symbols (12 planted pairs among random walks), 420 days, in three sectors,
    plus one symbol whose price never moves."""
    prices = planted_universe(11, n_days=420, n_planted=12, n_random=275).prices.copy()
    prices["FLAT"] = 50.0
    rng = np.random.default_rng(5)
    sectors = {s: ("energy", "utilities", "materials")[rng.integers(3)] for s in prices}
    return prices, sectors
