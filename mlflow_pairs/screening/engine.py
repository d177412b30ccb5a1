"""Screening all candidate pairs of a price panel: test, diagnose, control the FDR, select."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mlflow_pairs.config import ScreeningSettings
from mlflow_pairs.screening import diagnostics
from mlflow_pairs.screening._kernel import REASONS
from mlflow_pairs.screening.blocks import KernelSettings, pair_statistics
from mlflow_pairs.screening.fdr import bh_qvalues

#: The one definition of the defaults: the ``screening`` section of the configuration.
_DEFAULTS = ScreeningSettings()

__all__ = [
    "COLUMNS",
    "ScreeningCriteria",
    "ScreeningInput",
    "ScreeningResult",
    "candidate_pairs",
    "finish_screen",
    "kernel_settings",
    "prepare_screen",
    "screen",
    "screening_table",
]

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
    device : {"auto", "numpy", "cpu", "cuda"}
        Where the statistics are computed (it does not change them): ``numpy`` the
        NumPy engine, ``cpu`` or ``cuda`` (``cuda:N``) PyTorch on that device, ``auto``
        the GPU when there is one, else NumPy.
    """

    max_lag: int = _DEFAULTS.max_lag
    autolag: Literal["aic", "bic"] | None = _DEFAULTS.autolag
    hedge: Literal["ols", "tls"] = _DEFAULTS.hedge
    max_pvalue: float = _DEFAULTS.max_pvalue
    fdr: float | None = _DEFAULTS.fdr
    min_hedge_ratio: float = _DEFAULTS.min_hedge_ratio
    min_half_life: float = _DEFAULTS.min_half_life
    max_half_life: float = _DEFAULTS.max_half_life
    min_crossings: int = _DEFAULTS.min_crossings
    max_hurst: float = _DEFAULTS.max_hurst
    min_correlation: float = _DEFAULTS.min_correlation
    top_k: int | None = _DEFAULTS.top_k
    cross_sector: bool = _DEFAULTS.cross_sector
    arch_lags: int = _DEFAULTS.arch_lags
    ljung_box_lags: int = _DEFAULTS.ljung_box_lags
    device: str = _DEFAULTS.device


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
            counts = self.table["rejected_by"].str.replace(r":.*$", "", regex=True).value_counts()
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


@dataclass(frozen=True)
class ScreeningInput:
    """A screen's pairs and prices, ready for an engine (see :func:`prepare_screen`).

    ``a`` and ``b`` are the pairs' column positions (forward direction: ``a`` on ``b``).
    """

    symbols: tuple[str, ...]
    log_prices: np.ndarray  # (n_observations, n_symbols)
    a: np.ndarray
    b: np.ndarray
    settings: KernelSettings
    start: pd.Timestamp
    end: pd.Timestamp


def screen(
    prices: pd.DataFrame,
    criteria: ScreeningCriteria | None = None,
    *,
    sectors: Mapping[str, str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_jobs: int = 2,
    block_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScreeningResult:
    """Test every candidate pair of ``prices`` for cointegration and select the best.

    Parameters
    ----------
    prices : DataFrame of shape (n_observations, n_symbols)
        The formation window's prices (a validated panel: positive, no gaps).
    criteria : ScreeningCriteria
        Test settings, filters and the device.
    sectors : mapping of symbol to sector, optional
        Pairs are formed within a sector unless ``criteria.cross_sector``.
    pairs : sequence of (a, b), optional
        Test exactly these pairs instead.
    n_jobs : int
        Threads of the NumPy engine.
    block_size : int, optional
        Symbols per block (by default 512 on a CPU, 2,048 on a GPU): the working memory
        grows with its square (about ``19 * block_size**2`` floats with ``max_lag`` 1,
        plus a few spreads at a time), not with the universe's.
    progress : callable, optional
        Called with the number of tests finished (each pair is tested both ways).

    Returns
    -------
    ScreeningResult
        Both regression directions are computed. A pair's p-value (``pair_pvalue``,
        which the FDR, the filters and the ranking use) is the larger of the two (the
        weaker evidence), so a pair is never selected on the more favourable of two
        tries. Each row reports, and trading uses, the direction with the smaller
        p-value (its hedge ratio is the more accurate); the other is in ``*_reverse``.
    """
    criteria = criteria or ScreeningCriteria()
    prepared = prepare_screen(prices, criteria, sectors=sectors, pairs=pairs)
    if isinstance(prepared, ScreeningResult):
        return prepared
    stats = pair_statistics(
        prepared.log_prices,
        prepared.a,
        prepared.b,
        prepared.settings,
        device=criteria.device,
        block_size=block_size,
        n_jobs=n_jobs,
        progress=progress,
    )
    return finish_screen(prepared, stats, criteria, sectors)


def prepare_screen(
    prices: pd.DataFrame,
    criteria: ScreeningCriteria,
    *,
    sectors: Mapping[str, str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> ScreeningInput | ScreeningResult:
    """The pairs and log prices an engine needs, or the (empty) result when there is
    no candidate pair. Settings that do not fit the window are a ``ValueError``."""
    symbols = tuple(str(c) for c in prices.columns)
    start, end = pd.Timestamp(prices.index[0]), pd.Timestamp(prices.index[-1])
    if pairs is None:
        a, b = _candidate_positions(symbols, sectors, criteria.cross_sector)
    else:
        position = {s: i for i, s in enumerate(symbols)}
        a = np.array([position[p[0]] for p in pairs], dtype=np.intp)
        b = np.array([position[p[1]] for p in pairs], dtype=np.intp)
    if len(a) == 0:
        table = pd.DataFrame({name: [] for name in COLUMNS})
        return ScreeningResult(table, criteria, start, end, ("no candidate pairs",))
    log_prices = np.log(prices.to_numpy(dtype=float))
    settings = kernel_settings(criteria, log_prices.shape[0])
    return ScreeningInput(symbols, log_prices, a, b, settings, start, end)


def finish_screen(
    prepared: ScreeningInput,
    stats: Mapping[str, np.ndarray],
    criteria: ScreeningCriteria,
    sectors: Mapping[str, str] | None,
) -> ScreeningResult:
    """The result from every pair's statistics (:data:`.blocks.FIELDS`, in the order of
    ``prepared``'s pairs), whichever engine computed them."""
    lo, hi = np.minimum(prepared.a, prepared.b), np.maximum(prepared.a, prepared.b)
    y = np.where(stats["dir2"], hi, lo)
    x = np.where(stats["dir2"], lo, hi)
    table, messages = screening_table(
        stats, y, x, prepared.symbols, prepared.log_prices, criteria, sectors
    )
    return ScreeningResult(table, criteria, prepared.start, prepared.end, messages)


def _candidate_positions(
    symbols: Sequence[str], sectors: Mapping[str, str] | None, cross_sector: bool
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`candidate_pairs` as column positions, in the same order, without a loop."""
    a, b = np.triu_indices(len(symbols), 1)
    if not cross_sector and sectors is not None:
        codes: dict[str | None, int] = {}
        of = np.array([codes.setdefault(sectors.get(s), len(codes)) for s in symbols])
        same = of[a] == of[b]
        a, b = a[same], b[same]
    return a.astype(np.intp), b.astype(np.intp)


def kernel_settings(criteria: ScreeningCriteria, n_observations: int) -> KernelSettings:
    """What the kernel computes for ``criteria`` over a window of ``n_observations``;
    a window too short for the lags is a ``ValueError`` naming the numbers."""
    max_lag = criteria.max_lag
    if max_lag < 0:
        raise ValueError("max_lag must be >= 0")
    if max_lag > n_observations // 2 - 1:
        raise ValueError(
            f"max_lag {max_lag} needs at least {2 * (max_lag + 1)} observations, "
            f"got {n_observations}"
        )
    if n_observations - 1 - max_lag <= max_lag + 1:
        raise ValueError(f"{n_observations} observations are too few for max_lag {max_lag}")
    if criteria.autolag not in (None, "aic", "bic"):
        raise ValueError(f"autolag must be 'aic', 'bic' or None, not {criteria.autolag!r}")
    if criteria.hedge not in ("ols", "tls"):
        raise ValueError(f"hedge method must be 'ols' or 'tls', not {criteria.hedge!r}")
    lags = diagnostics.hurst_lags(n_observations)
    return KernelSettings(max_lag, criteria.autolag, criteria.hedge, tuple(int(k) for k in lags))


def screening_table(
    stats: Mapping[str, np.ndarray],
    y: np.ndarray,
    x: np.ndarray,
    symbols: Sequence[str],
    log_prices: np.ndarray,
    criteria: ScreeningCriteria,
    sectors: Mapping[str, str] | None,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The screening table from every pair's statistics, in the candidate pairs' order.

    This is the global step, whatever computed the statistics: Benjamini–Hochberg over
    all p-values, the filters, the variance-stability checks (on the passing pairs of
    large screens), the ranking and the selection. The columns are computed as arrays
    and the frame is built once, already sorted (by p-value, then y and x).
    """
    n = len(y)
    invalid = stats["reason"] != 0
    columns: dict[str, np.ndarray] = {
        name: np.where(invalid, np.nan, stats[name]) if name in _UNDEFINED else stats[name]
        for name in _STATISTICS
    }
    # The pair's p-value: the larger of its two directions' (NaN wins), so a pair is
    # never selected on the more favourable of two tries; the row reports the other.
    pair_pvalue = np.maximum(stats["pvalue"], stats["pvalue_reverse"])
    columns["pair_pvalue"] = np.where(invalid, np.nan, pair_pvalue)
    columns["qvalue"] = np.where(invalid, np.nan, bh_qvalues(pair_pvalue))
    failed = _first_failed_filter(columns, stats["reason"], criteria)
    passed = failed < 0
    beta = stats["hedge_ratio"]
    safe_beta = np.where(np.isfinite(beta), beta, 0.0)
    z = log_prices - log_prices.mean(axis=0)
    columns["arch_lm_pvalue"], columns["ljung_box_pvalue"] = _variance_checks(
        z, y, x, safe_beta, ~invalid, passed, criteria
    )
    score = columns["qvalue"] if criteria.fdr is not None else columns["pair_pvalue"]
    winners = np.flatnonzero(passed)
    winners = winners[np.argsort(score[winners], kind="stable")]  # ties: first come first
    rank = np.zeros(n, dtype=np.int64)
    rank[winners] = np.arange(1, len(winners) + 1)
    limit = criteria.top_k if criteria.top_k is not None else n
    columns["selected"] = passed & (rank <= limit)

    # Sorted by p-value (NaN last), then y and x; the strings are made in that order.
    names = np.asarray(symbols, dtype=object)
    code = np.empty(len(names), dtype=np.int64)
    code[np.argsort(names.astype(str), kind="stable")] = np.arange(len(names))
    order = np.lexsort((code[x], code[y], columns["pair_pvalue"]))
    y, x, failed, reason = y[order], x[order], failed[order], stats["reason"][order]
    columns = {name: values[order] for name, values in columns.items()}
    columns["y"], columns["x"] = names[y], names[x]
    columns["sector"] = _sectors(sectors, names, y, x)
    columns["reason"] = np.asarray(REASONS, dtype=object)[reason]
    columns["rejected_by"] = _rejection_text(failed, reason, columns, criteria)
    table = pd.DataFrame({name: columns[name] for name in COLUMNS if name != "rank"})
    table.insert(
        COLUMNS.index("rank"),
        "rank",
        pd.arrays.IntegerArray(rank[order], mask=~passed[order]),
    )
    messages: tuple[str, ...] = ()
    if passed.sum() > limit:
        messages = (f"{int(passed.sum())} pairs passed; kept the best {limit} (top_k)",)
    return table, messages


# The per-pair statistics in the table, and those that are NaN where the test is undefined.
_STATISTICS = (
    "hedge_ratio", "intercept", "adf_stat", "pvalue", "used_lag", "nobs", "adf_stat_reverse",
    "pvalue_reverse", "half_life", "hurst", "crossings", "return_correlation",
)  # fmt: skip
_UNDEFINED = ("adf_stat", "pvalue", "half_life", "hurst")


def _sectors(
    sectors: Mapping[str, str] | None, names: np.ndarray, y: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Each pair's sector, ``first|second`` across sectors, "" when unknown."""
    if sectors is None:
        return np.full(len(y), "", dtype=object)
    of = np.asarray([sectors.get(name, "") for name in names], dtype=object)
    first: np.ndarray = of[y]
    second: np.ndarray = of[x]
    same = first == second
    if same.all():
        return first
    return np.where(same, first, first + "|" + second)


def _filters(
    columns: Mapping[str, np.ndarray], reason: np.ndarray, c: ScreeningCriteria
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The filters in the order they are applied: (name, failed, value shown)."""
    beta, half_life = columns["hedge_ratio"], columns["half_life"]
    hurst, correlation = columns["hurst"], columns["return_correlation"]
    text = np.asarray(REASONS, dtype=object)[reason]
    with np.errstate(invalid="ignore"):  # NaN fails every filter, as it should
        return [
            ("undefined", reason != 0, text),
            ("hedge_ratio", ~(beta > c.min_hedge_ratio), beta),
            ("fdr", ~(columns["qvalue"] <= c.fdr), columns["qvalue"])
            if c.fdr is not None
            else ("pvalue", ~(columns["pair_pvalue"] <= c.max_pvalue), columns["pair_pvalue"]),
            ("half_life", ~((half_life >= c.min_half_life) & (half_life <= c.max_half_life)),
             half_life),
            ("crossings", columns["crossings"] < c.min_crossings, columns["crossings"]),
            ("hurst", ~(hurst < c.max_hurst), hurst),
            ("correlation", ~(correlation >= c.min_correlation), correlation),
        ]  # fmt: skip


def _first_failed_filter(
    columns: Mapping[str, np.ndarray], reason: np.ndarray, c: ScreeningCriteria
) -> np.ndarray:
    """Per pair, the index in :func:`_filters` of the first filter it fails; -1 passes."""
    failed = np.full(len(reason), -1, dtype=np.int8)
    for k, (_, fails, _) in enumerate(_filters(columns, reason, c)):
        failed[fails & (failed < 0)] = k
    return failed


def _rejection_text(
    failed: np.ndarray,
    reason: np.ndarray,
    columns: Mapping[str, np.ndarray],
    c: ScreeningCriteria,
) -> np.ndarray:
    """``rejected_by``: ``name: value`` of the first filter failed, "" when none.

    Each distinct value is formatted once: many q-values are equal (the Benjamini–
    Hochberg step-up makes runs of them).
    """
    text = np.full(len(failed), "", dtype=object)
    for k, (name, _, value) in enumerate(_filters(columns, reason, c)):
        rows = np.flatnonzero(failed == k)
        if len(rows) == 0:
            continue
        shown = value[rows]
        if shown.dtype.kind == "f":
            # Distinct bit patterns, so that -0.0 and 0.0 keep their own text.
            _, first, inverse = np.unique(
                shown.view(np.int64), return_index=True, return_inverse=True
            )
            formatted = [f"{name}: {v:.4g}" for v in shown[first].tolist()]
            text[rows] = np.asarray(formatted, dtype=object)[inverse.ravel()]
        else:
            text[rows] = [f"{name}: {v}" for v in shown.tolist()]
    return text


def _variance_checks(
    z: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray,
    defined: np.ndarray,
    passed: np.ndarray,
    c: ScreeningCriteria,
    all_below: int = 5000,
    chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """ARCH-LM and Ljung–Box p-values of the spread's daily changes.

    Computed for every pair of small screens (up to ``all_below`` pairs) and for the
    pairs that passed otherwise (they are per-path statistics, costlier than the rest);
    NaN elsewhere, and where the test is not ``defined``.
    """
    arch = np.full(len(y), np.nan)
    box = np.full(len(y), np.nan)
    rows = np.flatnonzero(defined & (passed if len(y) > all_below else True))
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        changes = np.diff(diagnostics.spreads(z, y[part], x[part], beta[part]), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            arch[part] = diagnostics.arch_lm_pvalue(changes, c.arch_lags)
            box[part] = diagnostics.ljung_box_pvalue(changes, c.ljung_box_lags)
    return arch, box
