"""The walk-forward protocol (pure): screen and fit on a formation window, trade the next
window without refitting, roll forward; ablations with the same costs.

Everything fitted (screening, hedge ratios, GARCH, scalers, the GRU) uses the formation
window only; the model's own chronological split and purge gap sit inside it. Trading
windows start flat and close their positions on their last day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from mlflow_pairs.backtest import CostModel, PairBacktest, backtest_pair, portfolio_returns
from mlflow_pairs.data.errors import DataError
from mlflow_pairs.model import GarchGruModel
from mlflow_pairs.model.signals import SignalRule
from mlflow_pairs.screening import ScreeningCriteria, ScreeningResult, screen

__all__ = [
    "STATUSES",
    "VARIANTS",
    "WindowResult",
    "ablation_rules",
    "positions_table",
    "returns_table",
    "run_walk_forward",
    "trade_predictions",
    "variant_returns",
    "windows",
]

#: The strategies compared in every run, with the same costs.
VARIANTS = ("static_z", "garch", "garch_gru")


def ablation_rules(rule: SignalRule) -> dict[str, SignalRule]:
    """static_z: fixed bands, no GRU; garch: GARCH-scaled bands, no GRU; garch_gru: both."""
    from dataclasses import replace

    return {
        "static_z": replace(rule, vol_scaling=False, min_probability=0.0),
        "garch": replace(rule, vol_scaling=True, min_probability=0.0),
        "garch_gru": replace(rule, vol_scaling=True),
    }


def windows(
    n: int, formation: int, trading: int, max_windows: int | None = None
) -> list[tuple[slice, slice]]:
    """(formation, trading) row ranges: formation ``[s, s+F)``, trading ``[s+F, s+F+T)``,
    rolled by T; the last trading window may be shorter."""
    out = []
    start = 0
    while start + formation < n:
        out.append(
            (
                slice(start, start + formation),
                slice(start + formation, min(start + formation + trading, n)),
            )
        )
        start += trading
    return out[-max_windows:] if max_windows else out


#: What a window traded: pairs that passed screening, the opt-in fallback's untested
#: pairs, or nothing.
STATUSES = ("tested", "fallback", "flat")


@dataclass
class WindowResult:
    """What one window produced.

    ``status`` is ``tested`` (pairs passed screening and were traded), ``fallback`` (none
    passed; the opt-in fallback traded the best candidates, untested) or ``flat``
    (nothing traded). ``exploratory`` marks a model fitted on untested candidates of a
    flat window, never traded; ``classification`` holds the trading window's candidate
    days with their first-passage labels and the GRU's and baselines' probabilities.
    """

    formation: tuple[pd.Timestamp, pd.Timestamp]
    trading: tuple[pd.Timestamp, pd.Timestamp]
    trading_dates: pd.DatetimeIndex
    screening: ScreeningResult
    pairs: list[tuple[str, str]]
    status: str
    model: GarchGruModel | None
    exploratory: bool = False
    predictions: pd.DataFrame | None = None
    backtests: dict[str, dict[str, PairBacktest]] = field(default_factory=dict)
    classification: pd.DataFrame | None = None
    note: str = ""

    @property
    def weak_evidence(self) -> bool:
        """Traded pairs that did not pass screening (the fallback)."""
        return self.status == "fallback"


def _candidates(result: ScreeningResult, k: int) -> pd.DataFrame:
    """The best ``k`` untested candidates by p-value: a defined statistic and a hedge
    ratio that passes the sign filter."""
    table = result.table
    valid = (table["reason"] == "") & (table["hedge_ratio"] > result.criteria.min_hedge_ratio)
    return table[valid].sort_values("pair_pvalue").head(k)


def _hedges(rows: pd.DataFrame) -> tuple[list[tuple[str, str]], dict[str, tuple[float, float]]]:
    pairs = list(zip(rows["y"], rows["x"], strict=True))
    hedges = {
        f"{y}/{x}": (float(b), float(a))
        for y, x, b, a in zip(
            rows["y"], rows["x"], rows["hedge_ratio"], rows["intercept"], strict=True
        )
    }
    return pairs, hedges


def run_walk_forward(
    prices: pd.DataFrame,
    *,
    sectors: Mapping[str, str] | None,
    criteria: ScreeningCriteria,
    make_model: Callable[[Sequence[tuple[str, str]]], GarchGruModel],
    rule: SignalRule,
    costs: CostModel,
    formation_days: int,
    trading_days: int,
    max_windows: int | None = None,
    fallback_top_k: int = 0,
    exploratory_top_k: int = 2,
    on_window: Callable[[int, int, WindowResult], None] | None = None,
) -> list[WindowResult]:
    """Run the protocol over ``prices`` (a validated panel).

    A window trades the pairs that passed screening, with the screening regression's
    hedge ratio and intercept. Where none passed it stays flat, unless
    ``fallback_top_k`` (opt-in) trades the best candidates, flagged ``fallback``. When the
    latest window is flat, a model is still fitted on its best ``exploratory_top_k``
    candidates (``exploratory``: a model to register and serve, never traded here).
    """
    plan = windows(len(prices), formation_days, trading_days, max_windows)
    if not plan:
        raise ValueError(
            f"{len(prices)} dates are too few for a {formation_days}-day formation window "
            "and a trading window"
        )
    rules = ablation_rules(rule)
    results = []
    for number, (formation, trading) in enumerate(plan):
        form_prices = prices.iloc[formation]
        span = (prices.index[formation.start], prices.index[formation.stop - 1])
        trade_span = (prices.index[trading.start], prices.index[trading.stop - 1])
        screening = screen(form_prices, criteria, sectors=sectors)
        if not screening.selected.empty:
            status, rows = "tested", screening.selected
        elif fallback_top_k > 0 and not _candidates(screening, fallback_top_k).empty:
            status, rows = "fallback", _candidates(screening, fallback_top_k)
        else:
            status, rows = "flat", screening.table.iloc[:0]
        last = number == len(plan) - 1
        exploratory = status == "flat" and last and exploratory_top_k > 0
        if exploratory:
            rows = _candidates(screening, exploratory_top_k)
        pairs, hedges = _hedges(rows)
        window = WindowResult(
            span, trade_span, prices.index[trading], screening, pairs, status, None,
            exploratory=exploratory and bool(pairs),
        )  # fmt: skip
        if status == "flat":
            window.note = f"flat: {screening.summary()}"
        if pairs:
            try:
                window.model = make_model(pairs).fit(form_prices, hedges=hedges)
            except DataError as exc:
                window.note = f"flat: the model could not be fitted ({exc})"
                window.status, window.exploratory = "flat", False
        if window.model is not None:
            model = window.model
            request = prices.iloc[max(0, formation.stop - model.min_history) : trading.stop]
            for variant, variant_rule in rules.items():
                predicted = model.predict(request, variant_rule, all_dates=True)
                if variant == "garch_gru":
                    window.predictions = predicted
                    trading_rows = predicted[predicted["date"] >= trade_span[0]]
                    window.classification = model.classification_frame(trading_rows)
                if window.status != "flat":
                    window.backtests[variant] = trade_predictions(
                        predicted, request, costs, *trade_span
                    )
        results.append(window)
        if on_window is not None:
            on_window(number, len(plan), window)
    return results


def trade_predictions(
    predicted: pd.DataFrame,
    prices: pd.DataFrame,
    costs: CostModel,
    start: pd.Timestamp,
    end: pd.Timestamp | None = None,
) -> dict[str, PairBacktest]:
    """Backtest each pair of a model's ``predicted`` rows (``all_dates``) from ``start`` to
    ``end`` (default: the last date).

    Flat before ``start``: only the signal of the last day before it counts, executed on
    ``start``'s bar. Every position is closed at the last close on or before ``end``,
    paying the exit cost that day. The walk-forward trades each window this way, and
    ``backtest --model`` the dates after the model's data.
    """
    out = {}
    for pair, rows in predicted.groupby("pair", sort=False):
        rows = rows.set_index("date")
        signal = rows["signal"].astype(float).copy()
        dates = signal.index
        stop = dates[-1] if end is None else end
        before = dates[dates < start]
        last_before = before[-1] if len(before) else None
        signal[(dates < start) & (dates != last_before)] = 0.0
        signal[dates >= stop] = 0.0
        y, x = rows["y"].iloc[0], rows["x"].iloc[0]
        result = backtest_pair(
            pair, prices[y], prices[x], signal, rows["hedge_ratio"], costs, liquidate=True
        )
        keep = (result.frame.index >= start) & (result.frame.index <= stop)
        out[pair] = PairBacktest(pair, result.frame[keep])
    return out


def variant_returns(
    results: Sequence[WindowResult],
    variant: str,
    column: str = "net",
    statuses: Sequence[str] = ("tested", "flat"),
) -> pd.Series:
    """The portfolio's daily returns of ``variant`` on every trading date of the windows
    whose status is in ``statuses``: a flat window earns 0 on each of its days.

    The default is the honest headline: tested windows as traded, flat ones flat, and
    the fallback's untested windows left out (pass ``("fallback",)`` to see those alone).
    """
    parts = []
    for window in results:
        if window.status not in statuses:
            continue
        traded = window.backtests.get(variant)
        daily = portfolio_returns(traded, column) if traded else pd.Series(dtype=float)
        parts.append(daily.reindex(window.trading_dates, fill_value=0.0))
    if not parts:
        return pd.Series(dtype=float)
    return pd.concat(parts).sort_index()


def positions_table(results: Sequence[WindowResult], variant: str = "garch_gru") -> pd.DataFrame:
    """``positions.csv``: date, pair, weight of each leg (and the legs' symbols)."""
    frames = []
    for window in results:
        for pair, backtest in window.backtests.get(variant, {}).items():
            y, x = pair.split("/")
            frame = backtest.frame[["weight_y", "weight_x"]].rename_axis("date").reset_index()
            frames.append(frame.assign(pair=pair, y=y, x=x))
    columns = ["date", "pair", "y", "x", "weight_y", "weight_x"]
    return pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)


def returns_table(results: Sequence[WindowResult], variant: str = "garch_gru") -> pd.DataFrame:
    """``daily_returns.csv``: date, pair, gross and net return (costs and borrow apart)."""
    frames = []
    for window in results:
        for pair, backtest in window.backtests.get(variant, {}).items():
            frame = backtest.frame[["gross", "cost", "borrow", "net"]]
            frames.append(frame.rename_axis("date").reset_index().assign(pair=pair))
    columns = ["date", "pair", "gross", "cost", "borrow", "net"]
    return pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)
