"""Backtest correctness: hand-computed cases, independent recomputation, exact costs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_pairs.backtest import CostModel, backtest_pair, performance, portfolio_returns, trades

DAYS = pd.bdate_range("2021-03-01", periods=10)


def test_four_days_by_hand() -> None:
    index = DAYS[:4]
    y = pd.Series([100.0, 110.0, 99.0, 99.0], index=index)
    x = pd.Series([50.0, 50.0, 55.0, 55.0], index=index)
    signal = pd.Series([1, 1, 0, 0], index=index)
    result = backtest_pair("Y/X", y, x, signal, 1.0, CostModel(cost_bps=10, borrow_bps=0)).frame
    # Day 0 decides long; days 1-2 hold +0.5 y / -0.5 x; day 2 decides flat, day 3 holds 0.
    assert result["weight_y"].tolist() == [0.0, 0.5, 0.5, 0.0]
    assert result["weight_x"].tolist() == [0.0, -0.5, -0.5, 0.0]
    # gross: day 1 0.5*10% = 5%; day 2 0.5*(-10%) - 0.5*10% = -10%.
    assert result["gross"].tolist() == pytest.approx([0.0, 0.05, -0.10, 0.0], abs=1e-12)
    # Turnover 1.0 on entry and on exit, 10 bp each.
    assert result["cost"].tolist() == pytest.approx([0.0, 0.001, 0.0, 0.001], abs=1e-15)
    assert result["net"].tolist() == pytest.approx([0.0, 0.049, -0.10, -0.001], abs=1e-12)


def test_a_position_open_at_the_end_pays_its_exit_when_liquidated() -> None:
    index = DAYS[:4]
    y = pd.Series([100.0, 110.0, 99.0, 99.0], index=index)
    x = pd.Series([50.0, 50.0, 55.0, 55.0], index=index)
    signal = pd.Series([1, 1, 1, 0], index=index)  # the window's last close decides flat
    costs = CostModel(cost_bps=10, borrow_bps=0)
    kept = backtest_pair("Y/X", y, x, signal, 1.0, costs).frame
    closed = backtest_pair("Y/X", y, x, signal, 1.0, costs, liquidate=True).frame
    # Held +0.5/-0.5 on day 3; without liquidation the exit (turnover 1.0) falls after the
    # window and is never paid; with it, day 3 pays 10 bp on it.
    assert kept["cost"].tolist() == pytest.approx([0.0, 0.001, 0.0, 0.0], abs=1e-15)
    assert closed["cost"].tolist() == pytest.approx([0.0, 0.001, 0.0, 0.001], abs=1e-15)
    assert closed["gross"].tolist() == kept["gross"].tolist()


def test_borrow_is_charged_by_default_on_the_short_leg() -> None:
    index = DAYS[:3]
    y = pd.Series([100.0, 100.0, 100.0], index=index)
    x = pd.Series([50.0, 50.0, 50.0], index=index)
    frame = backtest_pair("Y/X", y, x, pd.Series([1, 1, 1], index=index), 1.0).frame
    # 50 bp a year on the short x leg of weight 0.5, per trading day.
    assert frame["borrow"].tolist() == pytest.approx([0.0, 0.5 * 50e-4 / 252, 0.5 * 50e-4 / 252])


def test_half_spread_and_square_root_impact_by_hand() -> None:
    index = DAYS[:5]
    y = pd.Series([100.0, 101.0, 99.0, 100.0, 102.0], index=index)
    x = pd.Series([50.0, 50.0, 50.0, 50.0, 50.0], index=index)
    signal = pd.Series([0, 0, 0, 1, 1], index=index)
    costs = CostModel(
        cost_bps=5, borrow_bps=0, half_spread_bps=2, impact_coefficient=1.0,
        participation=0.04, impact_window=3,
    )  # fmt: skip
    frame = backtest_pair("Y/X", y, x, signal, 1.0, costs).frame
    # Day 4 trades 0.5 of each leg. y's volatility over the 3 days before day 4 (returns of
    # days 1-3; day 0 has none): std(ddof=1) of [0.01, -0.0198..., 0.0101...]; x's is 0.
    r = np.array([101 / 100 - 1, 99 / 101 - 1, 100 / 99 - 1])
    sigma_y = r.std(ddof=1)
    unit_y = 7e-4 + 1.0 * sigma_y * np.sqrt(0.04)
    assert frame["cost"].iloc[4] == pytest.approx(0.5 * unit_y + 0.5 * 7e-4, rel=1e-12)
    assert frame["cost"].iloc[:4].tolist() == [0.0] * 4


def _two_pairs() -> tuple[dict, pd.DataFrame]:
    prices = pd.DataFrame(
        {
            "A": [100, 101, 102, 101, 100, 99, 100, 101, 102, 103],
            "B": [50, 50, 51, 51, 50, 50, 51, 52, 52, 52],
            "C": [20, 20.5, 20.2, 20.0, 19.5, 19.8, 20.4, 20.1, 20.0, 20.6],
            "D": [30, 30.3, 30.1, 29.7, 29.9, 30.2, 30.6, 30.0, 30.1, 30.4],
        },
        index=DAYS,
        dtype=float,
    )
    signals = {
        "A/B": (pd.Series([0, 1, 1, 1, 0, 0, -1, -1, 0, 0], index=DAYS), 1.0),
        "C/D": (
            pd.Series([-1, -1, 0, 1, 1, 1, 1, 0, 0, 0], index=DAYS),
            pd.Series([0.5] * 5 + [0.8] * 5, index=DAYS),
        ),  # a re-hedge on day 5
    }
    return signals, prices


def test_two_pairs_ten_days_against_a_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    signals, prices = _two_pairs()
    costs = CostModel(cost_bps=7.5, borrow_bps=50)
    results = {
        pair: backtest_pair(pair, prices[pair[0]], prices[pair[2]], signal, beta, costs)
        for pair, (signal, beta) in signals.items()
    }
    for pair, (signal, beta) in signals.items():
        y, x = prices[pair[0]].to_numpy(), prices[pair[2]].to_numpy()
        betas = beta.to_numpy() if isinstance(beta, pd.Series) else np.full(10, beta)
        wy_prev = wx_prev = 0.0
        for t in range(10):
            s, b = (signal.iloc[t - 1], betas[t - 1]) if t else (0, betas[0])
            wy, wx = s / (1 + abs(b)), -s * b / (1 + abs(b))
            gross = (wy * (y[t] / y[t - 1] - 1) + wx * (x[t] / x[t - 1] - 1)) if t else 0.0
            cost = 7.5e-4 * (abs(wy - wy_prev) + abs(wx - wx_prev))
            borrow = 50e-4 / 252 * (abs(min(wy, 0)) + abs(min(wx, 0)))
            row = results[pair].frame.iloc[t]
            assert row["gross"] == pytest.approx(gross, abs=1e-15)
            assert row["net"] == pytest.approx(gross - cost - borrow, abs=1e-15)
            wy_prev, wx_prev = wy, wx

    # Anyone can recompute the PnL from positions.csv and the prices.
    positions = (
        pd.concat([r.frame[["weight_y", "weight_x"]].assign(pair=p) for p, r in results.items()])
        .rename_axis("date")
        .reset_index()
    )
    daily = (
        pd.concat([r.frame[["gross", "net"]].assign(pair=p) for p, r in results.items()])
        .rename_axis("date")
        .reset_index()
    )
    positions.to_csv(tmp_path / "positions.csv", index=False)
    daily.to_csv(tmp_path / "daily_returns.csv", index=False)
    reread = pd.read_csv(tmp_path / "positions.csv", parse_dates=["date"])
    logged = pd.read_csv(tmp_path / "daily_returns.csv", parse_dates=["date"])
    simple = prices.pct_change().fillna(0.0)
    for pair, rows in reread.groupby("pair"):
        r_y = simple[pair[0]].to_numpy()
        r_x = simple[pair[2]].to_numpy()
        recomputed = rows["weight_y"].to_numpy() * r_y + rows["weight_x"].to_numpy() * r_x
        np.testing.assert_allclose(
            recomputed, logged[logged["pair"] == pair]["gross"], rtol=0, atol=1e-15
        )


def test_costs_lower_returns_by_exactly_the_expected_amount() -> None:
    signals, prices = _two_pairs()
    signal, beta = signals["C/D"]
    free = backtest_pair("C/D", prices["C"], prices["D"], signal, beta, CostModel(0, 0)).frame
    paid = backtest_pair("C/D", prices["C"], prices["D"], signal, beta, CostModel(12, 0)).frame
    difference = free["net"] - paid["net"]
    np.testing.assert_allclose(difference, 12e-4 * paid["turnover"], atol=1e-16)
    # The re-hedge on day 5 (beta 0.5 -> 0.8 while long) costs turnover on the x leg only.
    w_before, w_after = 0.5 / 1.5, 0.8 / 1.8
    assert paid["turnover"].iloc[6] == pytest.approx(
        abs(w_after - w_before) + abs(1 / 1.8 - 1 / 1.5)
    )
    assert paid["gross"].equals(free["gross"])


def test_the_signal_day_never_earns_its_own_return() -> None:
    index = DAYS[:3]
    jump = pd.Series([100.0, 150.0, 150.0], index=index)
    flat = pd.Series([50.0, 50.0, 50.0], index=index)
    signal = pd.Series([0, 1, 1], index=index)  # decided on the day of the jump
    frame = backtest_pair("J/F", jump, flat, signal, 1.0, CostModel(0)).frame
    assert frame["gross"].tolist() == [0.0, 0.0, 0.0]


def test_performance_metrics_by_hand() -> None:
    returns = pd.Series([0.0, 0.10, -0.20, 0.05, 0.0], index=DAYS[:5])
    position = pd.Series([0, 1, 1, 0, -1], index=DAYS[:5])
    stats = performance(returns, position, turnover=pd.Series([0, 1, 0, 1, 1.0], index=DAYS[:5]))
    equity = np.cumprod(1 + returns.to_numpy())
    assert stats["total_return"] == pytest.approx(equity[-1] - 1)
    assert stats["max_drawdown"] == pytest.approx(1 - 0.88 / 1.10)
    assert stats["max_drawdown_days"] == 3
    assert stats["profit_factor"] == pytest.approx(0.15 / 0.20)
    assert stats["trades"] == 2
    assert stats["exposure"] == pytest.approx(0.6)
    assert stats["avg_holding_days"] == pytest.approx(1.5)
    assert stats["win_rate"] == pytest.approx(0.0)  # 1.1 * 0.8 - 1 < 0, and the last is flat
    r = returns.to_numpy()
    assert stats["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    assert stats["turnover"] == pytest.approx(3 / (5 / 252))
    book = trades(position, returns)
    assert book["direction"].tolist() == [1, -1]


def test_portfolio_is_the_average_of_pairs() -> None:
    signals, prices = _two_pairs()
    results = {
        pair: backtest_pair(pair, prices[pair[0]], prices[pair[2]], signal, beta)
        for pair, (signal, beta) in signals.items()
    }
    expected = (results["A/B"].frame["net"] + results["C/D"].frame["net"]) / 2
    pd.testing.assert_series_equal(portfolio_returns(results), expected, check_names=False)
