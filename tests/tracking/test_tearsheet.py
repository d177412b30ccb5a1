"""The tear sheet writes a real PNG for normal and empty inputs; legends carry the stats.

The rolling Sharpe ratio is checked against ``performance()`` on each window."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from mlflow_pairs.backtest.metrics import performance
from mlflow_pairs.backtest.metrics import trades as trade_book
from mlflow_pairs.tracking.tearsheet import _rolling_sharpe, legend_label, tear_sheet

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height in pixels from the IHDR chunk, which follows the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _variant(seed: int, days: pd.DatetimeIndex) -> tuple[pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    position = pd.Series(np.repeat(rng.choice([-1, 0, 1], len(days) // 10), 10), index=days)
    net = pd.Series(rng.normal(0.0004, 0.008, len(days)), index=days).where(position != 0, 0.0)
    return net, trade_book(position, net)


def test_legend_label_carries_the_interval_numbers() -> None:
    stats = {"sharpe": 0.1234, "sharpe_lower": -0.8321, "sharpe_upper": 0.951, "psr": 0.61}
    stats["dsr"] = 0.4
    assert legend_label("garch_gru", stats) == (
        "garch_gru  SR 0.12 [-0.83, 0.95]  PSR 0.61  DSR 0.40"
    )


def test_legend_label_carries_the_paired_tests() -> None:
    stats = {"sharpe": 0.5, "vs_static_z_sharpe_diff": 0.0912, "vs_static_z_sharpe_lower": -0.16}
    stats |= {"vs_static_z_sharpe_upper": 0.333, "vs_static_z_sharpe_pvalue": 0.474}
    stats |= {"vs_garch_sharpe_diff": -0.2, "vs_garch_sharpe_pvalue": 0.6}
    assert legend_label("garch_gru", stats) == (
        "garch_gru  SR 0.50\n"
        "  - static_z: SR +0.09 [-0.16, 0.33]  p 0.47\n"
        "  - garch: SR -0.20  p 0.60"
    )


def test_legend_label_leaves_out_missing_statistics() -> None:
    assert legend_label("zscore") == "zscore"
    assert legend_label("zscore", {"sharpe": 1.5}) == "zscore  SR 1.50"
    # An interval needs both ends.
    assert legend_label("zscore", {"sharpe": 1.5, "sharpe_lower": 0.2}) == "zscore  SR 1.50"
    assert legend_label("zscore", {"dsr": float("nan")}) == "zscore  DSR nan"


def test_tear_sheet_of_two_variants(tmp_path: Path) -> None:
    days = pd.bdate_range("2020-01-01", periods=300)
    gru_returns, gru_trades = _variant(1, days)
    z_returns, z_trades = _variant(2, days)
    assert len(gru_trades)
    assert len(z_trades)
    target = tmp_path / "figures" / "tearsheet.png"
    written = tear_sheet(
        {"garch_gru": gru_returns, "zscore": z_returns},
        {"garch_gru": gru_trades, "zscore": z_trades},
        target,
        title="XOM/CVX walk-forward",
        intervals={"garch_gru": {"sharpe": 0.12, "sharpe_lower": -0.83, "sharpe_upper": 0.95}},
    )
    assert written == target
    assert _png_size(target) == (1300, 850)
    assert target.stat().st_size > 30_000  # four drawn panels, not a blank canvas


def test_tear_sheet_when_nothing_happened(tmp_path: Path) -> None:
    days = pd.bdate_range("2020-01-01", periods=100)
    flat = pd.Series(0.0, index=days)
    no_trades = trade_book(pd.Series(0, index=days), flat)
    assert no_trades.empty
    written = tear_sheet({"garch_gru": flat}, {"garch_gru": no_trades}, tmp_path / "flat.png")
    assert _png_size(written) == (1300, 850)
    assert written.stat().st_size > 10_000


def test_tear_sheet_of_empty_inputs(tmp_path: Path) -> None:
    empty = pd.Series([], dtype=float, index=pd.DatetimeIndex([]))
    written = tear_sheet(
        {"garch_gru": empty},
        {"garch_gru": pd.DataFrame({"return": []})},
        tmp_path / "empty.png",
        title="nothing traded",
    )
    assert _png_size(written) == (1300, 850)
    assert written.stat().st_size > 5_000
    assert _png_size(tear_sheet({}, {}, tmp_path / "none.png")) == (1300, 850)


def test_tear_sheet_rejects_a_degenerate_window(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rolling_days"):
        tear_sheet({}, {}, tmp_path / "x.png", rolling_days=1)


def test_rolling_sharpe_is_the_window_sharpe() -> None:
    days = pd.bdate_range("2020-01-01", periods=120)
    rng = np.random.default_rng(3)
    r = pd.Series(np.r_[rng.normal(0.001, 0.01, 80), np.zeros(40)], index=days)
    rolling = _rolling_sharpe(r, 20)
    assert rolling.iloc[:19].isna().all()
    for end in (19, 50, 79):
        window = r.iloc[end - 19 : end + 1]
        assert_allclose(rolling.iloc[end], performance(window)["sharpe"], rtol=1e-9)
    # Windows with no position at all read as Sharpe 0, not as a rounding blow-up.
    assert (rolling.iloc[99:] == 0.0).all()
