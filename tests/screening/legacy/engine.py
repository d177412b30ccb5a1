"""Screening all candidate pairs of a price panel: test, diagnose, control the FDR, select."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from tests.screening.legacy import diagnostics
from tests.screening.legacy.engle_granger import engle_granger
from tests.screening.legacy.fdr import bh_qvalues

__all__ = ["COLUMNS", "ScreeningCriteria", "ScreeningResult", "candidate_pairs", "screen"]

#: Columns of the screening table, in order.
COLUMNS = (
    "y", "x", "sector", "hedge_ratio", "intercept", "adf_stat", "pvalue", "pair_pvalue",
    "qvalue", "used_lag", "nobs", "adf_stat_reverse", "pvalue_reverse", "half_life", "hurst",
    "crossings", "return_correlation", "arch_lm_pvalue", "ljung_box_pvalue", "selected",
    "rank", "rejected_by", "reason",
)  # fmt: skip


@dataclass(frozen=True)
class ScreeningCriteria:
    """Test settings and selection filters.

    Attributes
    ----------
    max_lag, autolag, hedge
        The Engle–Granger test (see :func:`~.engle_granger.engle_granger`).
    max_pvalue : float
        Largest Engle–Granger p-value selected (ignored when ``fdr`` is set).
    fdr : float, optional
        Select by Benjamini–Hochberg q-value over all tested pairs: ``q <= fdr`` (the
        default, 0.05); ``None`` selects by the raw p-value instead.
    min_hedge_ratio : float
        Reject pairs whose hedge ratio is at most this: a non-positive ratio means long
        or short both legs, a directional bet rather than a spread.
    min_half_life, max_half_life : float
        Half-life bounds in trading days.
    min_crossings : int
        Fewest mean crossings of the spread in the formation window.
    max_hurst : float
        Largest Hurst exponent (below 0.5 is mean-reverting).
    min_correlation : float
        Smallest correlation of the legs' daily returns.
    top_k : int, optional
        Keep at most this many of the passing pairs, best p-value (or q-value) first.
    cross_sector : bool
        Also pair symbols of different sectors.
    arch_lags, ljung_box_lags : int
        Lags of the variance-stability checks on the spread's daily changes.
    """

    max_lag: int = 1
    autolag: Literal["aic", "bic"] | None = None
    hedge: Literal["ols", "tls"] = "ols"
    max_pvalue: float = 0.05
    fdr: float | None = 0.05
    min_hedge_ratio: float = 0.0
    min_half_life: float = 1.0
    max_half_life: float = 126.0
    min_crossings: int = 12
    max_hurst: float = 0.5
    min_correlation: float = 0.0
    top_k: int | None = 10
    cross_sector: bool = False
    arch_lags: int = 5
    ljung_box_lags: int = 10


@dataclass(frozen=True)
class ScreeningResult:
    """The screening table (one row per tested pair) and what it amounts to."""

    table: pd.DataFrame
    criteria: ScreeningCriteria
    start: pd.Timestamp
    end: pd.Timestamp
    messages: tuple[str, ...] = field(default=())

    @property
    def n_tested(self) -> int:
        return len(self.table)

    @property
    def n_passed(self) -> int:
        return int((self.table["rejected_by"] == "").sum())

    @property
    def selected(self) -> pd.DataFrame:
        return self.table.loc[self.table["selected"].astype(bool)].sort_values("rank")

    @property
    def min_pvalue(self) -> float:
        return float(self.table["pair_pvalue"].min()) if self.n_tested else float("nan")

    @property
    def empty(self) -> bool:
        """True when no pair passed the filters."""
        return self.n_passed == 0

    def summary(self) -> str:
        """One line for people: how many tested, passed, selected, or why none."""
        if self.n_tested == 0:
            return "no pairs to test"
        if self.empty:
            counts = self.table["rejected_by"].str.split(":").str[0].value_counts()
            why = ", ".join(f"{name} {count}" for name, count in counts.items())
            return (
                f"no pair passed the filters among {self.n_tested} tested "
                f"(rejected by {why}); smallest p-value {self.min_pvalue:.4g}"
            )
        return f"{self.n_passed} of {self.n_tested} pairs passed; {len(self.selected)} selected"


def candidate_pairs(
    symbols: Sequence[str], sectors: Mapping[str, str] | None = None, cross_sector: bool = False
) -> list[tuple[str, str]]:
    """Unordered pairs of ``symbols``: within each sector, or across sectors too."""
    pairs = []
    for i, a in enumerate(symbols):
        for b in symbols[i + 1 :]:
            if cross_sector or sectors is None or sectors.get(a) == sectors.get(b):
                pairs.append((a, b))
    return pairs


def screen(
    prices: pd.DataFrame,
    criteria: ScreeningCriteria | None = None,
    *,
    sectors: Mapping[str, str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_jobs: int = 2,
    progress: Callable[[int], None] | None = None,
) -> ScreeningResult:
    """Test every candidate pair of ``prices`` for cointegration and select the best.

    Parameters
    ----------
    prices : DataFrame of shape (n_observations, n_symbols)
        The formation window's prices (a validated panel: positive, no gaps).
    criteria : ScreeningCriteria
        Test settings and filters.
    sectors : mapping of symbol to sector, optional
        Pairs are formed within a sector unless ``criteria.cross_sector``.
    pairs : sequence of (a, b), optional
        Test exactly these pairs instead.
    progress : callable, optional
        Called with the number of tests finished (each pair is tested both ways).

    Returns
    -------
    ScreeningResult
        Both regression directions are computed; each row reports the direction with
        the larger p-value (the weaker evidence), so a pair is never selected on the
        more favourable of two tries. The other direction is in ``*_reverse``.
    """
    criteria = criteria or ScreeningCriteria()
    symbols = [str(c) for c in prices.columns]
    if pairs is None:
        pairs = candidate_pairs(symbols, sectors, criteria.cross_sector)
    start, end = pd.Timestamp(prices.index[0]), pd.Timestamp(prices.index[-1])
    if not pairs:
        table = pd.DataFrame({name: [] for name in COLUMNS})
        return ScreeningResult(table, criteria, start, end, ("no candidate pairs",))

    log_prices = np.log(prices.to_numpy(dtype=float))
    position = {s: i for i, s in enumerate(symbols)}
    a = np.array([position[p[0]] for p in pairs])
    b = np.array([position[p[1]] for p in pairs])
    both = engle_granger(
        log_prices,
        np.r_[a, b],
        np.r_[b, a],
        max_lag=criteria.max_lag,
        autolag=criteria.autolag,
        hedge=criteria.hedge,
        n_jobs=n_jobs,
        progress=progress,
    )
    n = len(pairs)
    forward_p, reverse_p = both.pvalue[:n], both.pvalue[n:]
    # Report the direction with the smaller p-value; NaN (undefined) wins so it shows.
    # (Changed from the previous engine's larger p-value with the engine itself, issue 11:
    # selection still uses the larger, ``pair_pvalue``.)
    use_reverse = np.where(
        np.isnan(reverse_p), True, np.where(np.isnan(forward_p), False, reverse_p < forward_p)
    )
    pick = np.where(use_reverse, np.arange(n) + n, np.arange(n))
    other = np.where(use_reverse, np.arange(n), np.arange(n) + n)
    y = np.where(use_reverse, b, a)
    x = np.where(use_reverse, a, b)
    beta = both.hedge_ratio[pick]
    safe_beta = np.where(np.isfinite(beta), beta, 0.0)
    z = log_prices - log_prices.mean(axis=0)

    table = pd.DataFrame(
        {
            "y": [symbols[i] for i in y],
            "x": [symbols[i] for i in x],
            "sector": [_sector(sectors, symbols[i], symbols[j]) for i, j in zip(y, x, strict=True)],
            "hedge_ratio": beta,
            "intercept": both.intercept[pick],
            "adf_stat": both.adf_stat[pick],
            "pvalue": both.pvalue[pick],
            "pair_pvalue": np.maximum(both.pvalue[pick], both.pvalue[other]),
            "qvalue": bh_qvalues(np.maximum(both.pvalue[pick], both.pvalue[other])),
            "used_lag": both.used_lag[pick],
            "nobs": both.nobs[pick],
            "adf_stat_reverse": both.adf_stat[other],
            "pvalue_reverse": both.pvalue[other],
            "half_life": diagnostics.half_life(z, y, x, safe_beta),
            "hurst": diagnostics.hurst_exponent(z, y, x, safe_beta),
            "crossings": _crossings(z, y, x, safe_beta),
            "return_correlation": diagnostics.return_correlation(z, y, x),
            "reason": np.where(both.reason[pick] != "", both.reason[pick], both.reason[other]),
        }
    )
    invalid = table["reason"] != ""
    table.loc[invalid, ["adf_stat", "pvalue", "pair_pvalue", "qvalue", "half_life", "hurst"]] = (
        np.nan
    )
    table["rejected_by"] = _rejections(table, criteria)
    passed = table["rejected_by"] == ""
    _variance_checks(table, z, y, x, safe_beta, passed.to_numpy(), criteria)
    score = table["qvalue"] if criteria.fdr is not None else table["pair_pvalue"]
    order = score.where(passed).rank(method="first")
    table["rank"] = order.astype("Int64")
    limit = criteria.top_k if criteria.top_k is not None else len(table)
    table["selected"] = passed & (order <= limit)
    table = table[list(COLUMNS)]
    table = table.sort_values(["pair_pvalue", "y", "x"], na_position="last", ignore_index=True)
    messages: tuple[str, ...] = ()
    if passed.sum() > limit:
        messages = (f"{int(passed.sum())} pairs passed; kept the best {limit} (top_k)",)
    return ScreeningResult(table, criteria, start, end, messages)


def _sector(sectors: Mapping[str, str] | None, a: str, b: str) -> str:
    if sectors is None:
        return ""
    first, second = sectors.get(a, ""), sectors.get(b, "")
    return first if first == second else f"{first}|{second}"


def _crossings(
    z: np.ndarray, y: np.ndarray, x: np.ndarray, beta: np.ndarray, chunk: int = 4096
) -> np.ndarray:
    out = np.empty(len(y), dtype=np.int64)
    for start in range(0, len(y), chunk):
        part = slice(start, start + chunk)
        out[part] = diagnostics.mean_crossings(diagnostics.spreads(z, y[part], x[part], beta[part]))
    return out


def _rejections(table: pd.DataFrame, c: ScreeningCriteria) -> np.ndarray:
    """The first filter each pair fails ("" when it passes), as ``name: value``."""
    checks = [
        ("undefined", table["reason"] != "", table["reason"]),
        ("hedge_ratio", ~(table["hedge_ratio"] > c.min_hedge_ratio), table["hedge_ratio"]),
        ("fdr" if c.fdr is not None else "pvalue",
         ~(table["qvalue"] <= c.fdr) if c.fdr is not None
         else ~(table["pair_pvalue"] <= c.max_pvalue),
         table["qvalue"] if c.fdr is not None else table["pair_pvalue"]),
        ("half_life", ~table["half_life"].between(c.min_half_life, c.max_half_life),
         table["half_life"]),
        ("crossings", table["crossings"] < c.min_crossings, table["crossings"]),
        ("hurst", ~(table["hurst"] < c.max_hurst), table["hurst"]),
        ("correlation", ~(table["return_correlation"] >= c.min_correlation),
         table["return_correlation"]),
    ]  # fmt: skip
    rejected = np.full(len(table), "", dtype=object)
    for name, failed, value in checks:
        fresh = failed.to_numpy() & (rejected == "")
        rejected[fresh] = [
            f"{name}: {v:.4g}" if isinstance(v, float) else f"{name}: {v}"
            for v in value.to_numpy()[fresh]
        ]
    return rejected


def _variance_checks(
    table: pd.DataFrame,
    z: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray,
    passed: np.ndarray,
    c: ScreeningCriteria,
    all_below: int = 5000,
    chunk: int = 1024,
) -> None:
    """ARCH-LM and Ljung–Box p-values of the spread's daily changes.

    Computed for every pair of small screens, and for the pairs that passed otherwise
    (they are per-path statistics, costlier than the rest); NaN elsewhere.
    """
    table["arch_lm_pvalue"] = np.nan
    table["ljung_box_pvalue"] = np.nan
    rows = np.arange(len(table)) if len(table) <= all_below else np.nonzero(passed)[0]
    rows = rows[np.isfinite(beta[rows]) & (table["reason"].to_numpy()[rows] == "")]
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        changes = np.diff(diagnostics.spreads(z, y[part], x[part], beta[part]), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            table.loc[part, "arch_lm_pvalue"] = diagnostics.arch_lm_pvalue(changes, c.arch_lags)
            table.loc[part, "ljung_box_pvalue"] = diagnostics.ljung_box_pvalue(
                changes, c.ljung_box_lags
            )
