"""The GARCH-GRU hybrid: per pair a spread part and a volatility part, per sector one GRU.

Composed like ``arch``'s models from replaceable parts: :class:`~.spread.SpreadPart`
(a :class:`~.parts.HedgePart` and the spread's z-score), a :class:`~.parts.VolatilityPart`
(conditional volatility; GARCH by default) and :class:`~.sequence.SequencePart` (the
probability that a position opened now reaches the exit band first). The part classes
are passed in (the flavor resolves them from the plugin registry by name). Pure: no
MLflow, no I/O besides :meth:`save` and :meth:`load`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from mlflow_pairs.config import BacktestSettings, MLSettings
from mlflow_pairs.data.errors import DataError, format_dates
from mlflow_pairs.features import Feature, PairPanel
from mlflow_pairs.model.egarch import EgarchPart
from mlflow_pairs.model.hedge import HedgeSpec, KalmanHedge, StaticHedge
from mlflow_pairs.model.metrics import always_reverts_f1, classification_metrics
from mlflow_pairs.model.sequence import SequencePart, TrainingConfig
from mlflow_pairs.model.signals import SignalRule, leg_weights, positions, threshold_scale
from mlflow_pairs.model.spread import SpreadPart
from mlflow_pairs.model.volatility import GarchPart, GarchSpec

#: The one definition of the defaults: the configuration's sections. The label's horizon,
#: exit and stop are the signal rule's (``backtest``), so the label is tied to the trade.
_ML, _BACKTEST = MLSettings(), BacktestSettings()

__all__ = [
    "BUILTIN_PARTS",
    "MODEL_FEATURES",
    "OUTPUT_COLUMNS",
    "GarchGruModel",
    "ModelConfig",
    "ZScoreBaseline",
    "first_passage_target",
]

#: Inputs the model computes itself, before the plugins' features (``abs_zscore`` is the
#: plain baseline's own input, so the GRU starts from what the baseline knows).
MODEL_FEATURES = ("zscore", "abs_zscore", "garch_vol_ratio", "std_resid")
#: The signed ones (with the plugins' ``Feature.signed`` columns): the GRU sees them times
#: the sign of the window's last z-score, so that a window and its mirror image (the same
#: spread upside down) look the same to it, as they do to the first-passage label.
_SIGNED_MODEL_FEATURES = ("zscore", "std_resid")

#: Columns of :meth:`GarchGruModel.predict`'s output.
OUTPUT_COLUMNS = (
    "pair", "y", "x", "date", "hedge_ratio", "spread", "zscore", "garch_sigma",
    "reversion_probability", "signal", "weight_y", "weight_x",
)  # fmt: skip

#: The parts the package ships, by kind and name (the defaults when none are passed).
BUILTIN_PARTS: dict[str, dict[str, Any]] = {
    "hedge": {StaticHedge.name: StaticHedge, KalmanHedge.name: KalmanHedge},
    "volatility": {GarchPart.name: GarchPart, EgarchPart.name: EgarchPart},
}

_MODEL_FILE = "model.json"
_WEIGHTS_FILE = "gru.pt"
#: 3: the GRU carries the |z| baseline's logit as a prior (gru.pt); 4: its signed inputs
#: are oriented by the last z-score's sign (``oriented_columns``).
_FORMAT_VERSION = 4
#: Formats :meth:`GarchGruModel.load` reads: 3 is 4 without the orientation, 2 is 3 with a
#: zero prior.
_READABLE_FORMATS = (2, 3, 4)


@dataclass(frozen=True)
class ModelConfig:
    """Windows, the first-passage target and the chronological split.

    Attributes
    ----------
    window : int
        Days of features the GRU sees.
    horizon, exit_z, stop_z : int, float, float
        The target of a day with ``|z|`` at least ``label_min_z``: 1 when a position
        opened that day would reach the exit band (``|z| <= exit_z`` on the side it
        started) before the stop (``|z| >= stop_z``) and within ``horizon`` days (the
        signal rule's ``max_holding``); 0 otherwise.
    label_min_z : float
        Days closer to the mean than this are no candidates and carry no label.
    zscore_window : int, optional
        ``None``: z-scores use the formation window's mean and standard deviation; else a
        causal rolling window of this many days.
    validation_fraction, test_fraction : float
        The chronological split of the formation window.
    """

    window: int = _ML.window
    horizon: int = _BACKTEST.max_holding
    exit_z: float = _BACKTEST.exit_z
    stop_z: float = _BACKTEST.stop_z
    label_min_z: float = _ML.label_min_z
    zscore_window: int | None = None  # hedge.zscore: formation
    validation_fraction: float = _ML.validation_fraction
    test_fraction: float = _ML.test_fraction


def first_passage_target(
    zscore: np.ndarray, horizon: int, exit_z: float, stop_z: float, min_abs_z: float
) -> np.ndarray:
    """Whether a position opened on each day reaches the exit band first.

    For a day ``t`` with ``min_abs_z <= |z_t| < stop_z``, with ``s = sign(z_t)``: 1 when
    ``s z_{t+k} <= exit_z`` for some ``k`` in ``1..horizon`` before any ``s z_{t+k} >=
    stop_z``; 0 when the stop comes first or neither comes within ``horizon`` days (the
    time limit). NaN on other days, and where the outcome is not yet known (the data ends,
    or a NaN, before either).
    """
    z = np.asarray(zscore, dtype=float)
    n = len(z)
    target = np.full(n, np.nan)
    side = np.sign(z)
    open_ = np.isfinite(z) & (np.abs(z) >= min_abs_z) & (np.abs(z) < stop_z)
    undecided = open_.copy()
    for k in range(1, horizon + 1):
        if not undecided.any():
            break
        later = np.full(n, np.nan)
        later[: n - k] = z[k:]
        path = side * later
        unknown = undecided & ~np.isfinite(path)
        undecided &= ~unknown  # stays NaN
        hit = undecided & (path <= exit_z)
        stopped = undecided & ~hit & (path >= stop_z)
        target[hit] = 1.0
        target[stopped] = 0.0
        undecided &= ~(hit | stopped)
    target[undecided] = 0.0  # the time limit came first
    return target


@dataclass
class ZScoreBaseline:
    """The plain baseline of the GRU: a logistic regression of the target on ``|z|``,
    fitted on the same training days."""

    coef: tuple[float, float] = (0.0, 0.0)

    def fit(self, abs_z: np.ndarray, labels: np.ndarray) -> ZScoreBaseline:
        design = np.column_stack([np.ones(len(abs_z)), abs_z])
        weights = np.zeros(2)
        for _ in range(50):  # Newton-Raphson; a tiny ridge keeps separable data finite
            p = 1 / (1 + np.exp(-design @ weights))
            gradient = design.T @ (labels - p) - 1e-6 * weights
            hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            weights += step
            if np.abs(step).max() < 1e-10:
                break
        self.coef = (float(weights[0]), float(weights[1]))
        return self

    def predict_proba(self, abs_z: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.coef[0] + self.coef[1] * np.asarray(abs_z))))


@dataclass
class _Scaler:
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.ones(0))

    def fit(self, rows: np.ndarray) -> _Scaler:
        self.mean = np.nanmean(rows, axis=0)
        std = np.nanstd(rows, axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, rows: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, (rows - self.mean) / self.std)


class GarchGruModel:
    """One sector's model: spread and volatility parts per pair, one GRU for all pairs.

    Parameters
    ----------
    sector : str
        The sector the model serves.
    pairs : sequence of (y, x)
        The pairs, typically the screening's selection.
    features : sequence of Feature
        Plugin features appended to :data:`MODEL_FEATURES` (causal; see the hook docs).
    garch : GarchSpec
        The volatility part's specification (``garch.part`` names the part).
    training : TrainingConfig
        The sequence part's training settings.
    config : ModelConfig
        Window, target and split.
    hedge : HedgeSpec
        The hedge part's specification (``hedge.part`` names the part).
    parts : mapping, optional
        ``{"hedge": {name: class}, "volatility": {name: class}}``: the part classes that
        may be named (the registered ones); the built-ins by default.
    """

    def __init__(
        self,
        sector: str,
        pairs: Sequence[tuple[str, str]],
        features: Sequence[Feature] = (),
        garch: GarchSpec | None = None,
        training: TrainingConfig | None = None,
        config: ModelConfig | None = None,
        hedge: HedgeSpec | None = None,
        parts: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.sector = sector
        self.pairs = [(str(y), str(x)) for y, x in pairs]
        self.features = list(features)
        self.garch = garch or GarchSpec()
        self.training = training or TrainingConfig()
        self.config = config or ModelConfig()
        self.hedge = hedge or HedgeSpec()
        self.parts = {kind: dict(named) for kind, named in (parts or BUILTIN_PARTS).items()}
        #: The input columns the GRU sees oriented (see :data:`_SIGNED_MODEL_FEATURES`);
        #: empty for a model of format 3 or older, whose GRU learned them as they come.
        self.oriented_columns_ = self._signed_columns()

    # -- shape of the inputs -----------------------------------------------------------

    @property
    def feature_names(self) -> list[str]:
        return [*MODEL_FEATURES, *(c for f in self.features for c in f.columns)]

    def _signed_columns(self) -> list[str]:
        """The model's signed inputs and the features' ``signed`` columns."""
        signed = list(_SIGNED_MODEL_FEATURES)
        for feature in self.features:
            declared = feature.signed
            unknown = [c for c in declared if c not in feature.columns]
            if unknown:
                raise ValueError(
                    f"feature {feature.name!r} declares signed column(s) "
                    f"{', '.join(map(repr, unknown))} that are not among its columns"
                )
            signed.extend(declared)
        return signed

    @property
    def symbols(self) -> list[str]:
        return list(dict.fromkeys(s for pair in self.pairs for s in pair))

    @property
    def min_history(self) -> int:
        """Fewest price dates a prediction needs: the GRU window after the features'
        own warm-up (and one day for returns, or a rolling z-score's window)."""
        warmup = max([1, *(f.min_history for f in self.features)])
        return self.config.window + warmup + (self.config.zscore_window or 0)

    def _part_class(self, kind: str, name: str) -> Any:
        named = self.parts.get(kind, {})
        if name not in named:
            known = ", ".join(sorted(named)) or "none"
            raise ValueError(
                f"unknown {kind} part {name!r} (available: {known}); install the plugin "
                "that registers it"
            )
        return named[name]

    # -- fitting -------------------------------------------------------------------------

    def fit(
        self,
        prices: pd.DataFrame,
        *,
        hedges: Mapping[str, tuple[float, float]] | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ) -> GarchGruModel:
        """Fit every part on the formation window ``prices``.

        Parameters
        ----------
        prices : DataFrame of shape (n_dates, n_symbols)
            The formation window.
        hedges : mapping of ``"y/x"`` to (hedge_ratio, intercept), optional
            The screening regression's numbers over the same window: the spread traded is
            the spread tested. Pairs not given are regressed here the same way (OLS).

        The hedge and the z-score statistics come from the whole formation window (the
        screening's regression); the volatility part, the feature scaler and the GRU are
        fitted on the chronological training part only and applied to validation and
        test dates without refitting; the GRU early-stops on validation loss and
        ``metrics_`` are measured on the test part (with the ``|z|`` baseline's beside
        them). Labels whose horizon crosses into the next part are dropped (a purge gap
        of ``horizon`` days).
        """
        self.oriented_columns_ = self._signed_columns()
        if not self.pairs:
            raise ValueError("the model needs at least one pair")
        cfg = self.config
        n = len(prices)
        n_test = int(n * cfg.test_fraction)
        n_val = int(n * cfg.validation_fraction)
        n_train = n - n_val - n_test
        if n_train < max(250, 3 * self.min_history):
            raise DataError(
                "too-few-observations",
                f"{n} dates leave {n_train} for training; at least "
                f"{max(250, 3 * self.min_history)} are needed",
                symbols=self.symbols,
            )
        hedge_class = self._part_class("hedge", self.hedge.part)
        vol_class = self._part_class("volatility", self.garch.part)
        self.spread_parts_: dict[str, SpreadPart] = {}
        self.garch_parts_: dict[str, Any] = {}
        self.last_spread_: dict[str, tuple[str, float]] = {}
        for y, x in self.pairs:
            beta, alpha = (hedges or {}).get(f"{y}/{x}", (None, None))
            part = SpreadPart.fit(
                prices, y, x, hedge_class(self.hedge), hedge_ratio=beta, intercept=alpha,
                zscore_window=cfg.zscore_window,
            )  # fmt: skip
            changes = part.spread(prices).diff()
            self.spread_parts_[part.name] = part
            volatility = vol_class(self.garch).fit(changes.iloc[:n_train], part.name)
            volatility.extend_state(changes)
            self.garch_parts_[part.name] = volatility
            self.last_spread_[part.name] = (
                f"{prices.index[-1]:%Y-%m-%d}",
                float(part.spread(prices.iloc[-1:]).iloc[0]),
            )
        self.data_end_ = f"{prices.index[-1]:%Y-%m-%d}"
        inputs = self._inputs(prices.index, prices[self.symbols].to_numpy(dtype=float))
        frames = dict(zip(self.spread_parts_, inputs["rows"], strict=True))
        train_rows = np.concatenate([rows[:n_train] for rows in frames.values()])
        self.scaler_ = _Scaler().fit(train_rows)
        h = cfg.horizon
        bounds = {
            "train": (0, n_train - h),
            "validation": (n_train, n_train + n_val - h),
            "test": (n_train + n_val, n - h),
        }
        samples: dict[str, list[tuple[np.ndarray, ...]]] = {k: [] for k in bounds}
        for k, (name, frame) in enumerate(frames.items()):
            windows, ends = self._windows(frame)
            zscore = inputs["zscore"][:, k]
            target = self.target(zscore)
            for split, (lo, hi) in bounds.items():
                keep = (ends >= lo) & (ends < hi) & ~np.isnan(target[ends])
                samples[split].append(
                    (
                        windows[keep],
                        target[ends[keep]],
                        np.full(int(keep.sum()), name, object),
                        np.abs(zscore[ends[keep]]),
                    )
                )
        stacked = {
            split: tuple(np.concatenate([r[i] for r in rows]) for i in range(4))
            for split, rows in samples.items()
        }
        # One outcome only (every candidate reverted, say) is a fact to learn, not an
        # error: the GRU and the baseline then predict it. No candidate day at all is.
        if len(stacked["train"][1]) == 0 or len(stacked["validation"][1]) == 0:
            raise DataError(
                "too-few-observations",
                f"the formation window {format_dates(prices.index[:1])} on has "
                f"{len(stacked['train'][1])} labelled training and "
                f"{len(stacked['validation'][1])} validation days with |z| >= "
                f"{cfg.label_min_z}; both parts need some",
                symbols=self.symbols,
            )
        self.baseline_ = ZScoreBaseline().fit(stacked["train"][3], stacked["train"][1])
        # The GRU starts from the baseline's logit (in scaled |z|) and learns a correction:
        # with few failures per window, a GRU from scratch ranks worse than |z| alone.
        column = MODEL_FEATURES.index("abs_zscore")
        intercept, slope = self.baseline_.coef
        mean, std = float(self.scaler_.mean[column]), float(self.scaler_.std[column])
        self.sequence_ = SequencePart(self.training).fit(
            (stacked["train"][0], stacked["train"][1]),
            (stacked["validation"][0], stacked["validation"][1]),
            prior=(intercept + slope * mean, slope * std, column),
            on_epoch=on_epoch,
        )
        test_windows, test_labels, test_pairs, test_abs_z = stacked["test"]
        probability = self.sequence_.predict_proba(test_windows)
        self.metrics_ = classification_metrics(test_labels, probability)
        baseline = classification_metrics(test_labels, self.baseline_.predict_proba(test_abs_z))
        self.metrics_.update({f"zscore_{k}": v for k, v in baseline.items()})
        self.metrics_["f1_constant"] = always_reverts_f1(test_labels)
        self.pair_metrics_ = {
            name: classification_metrics(
                test_labels[test_pairs == name], probability[test_pairs == name]
            )
            for name in frames
        }
        self.split_ = {
            part: (
                f"{prices.index[max(lo, 0)]:%Y-%m-%d}",
                f"{prices.index[min(hi, n) - 1]:%Y-%m-%d}",
            )
            for part, (lo, hi) in {
                "train": (0, n_train),
                "validation": (n_train, n_train + n_val),
                "test": (n_train + n_val, n),
            }.items()
        }
        self.sample_counts_ = {part: len(stacked[part][1]) for part in stacked}
        self.base_rate_ = float(np.mean(stacked["train"][1]))
        return self

    def target(self, zscore: np.ndarray) -> np.ndarray:
        """The first-passage target of a z-score path (see :func:`first_passage_target`)."""
        cfg = self.config
        return first_passage_target(zscore, cfg.horizon, cfg.exit_z, cfg.stop_z, cfg.label_min_z)

    # -- features ------------------------------------------------------------------------

    def _inputs(self, index: pd.Index, values: np.ndarray) -> dict[str, Any]:
        """Spreads, z-scores, GARCH outputs (arrays of shape (n_dates, n_pairs)) and the
        unscaled feature rows of every pair (shape (n_pairs, n_dates, n_features)), from
        the prices ``values`` of :attr:`symbols` (in that order) on the dates ``index``."""
        parts = list(self.spread_parts_.values())
        position = {symbol: i for i, symbol in enumerate(self.symbols)}
        y = values[:, [position[p.y] for p in parts]]
        x = values[:, [position[p.x] for p in parts]]
        log_y, log_x = np.log(y), np.log(x)
        dates = pd.DatetimeIndex(index).as_unit("ns").to_numpy()
        n, k = y.shape
        spread, hedge, zscore = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
        for j, part in enumerate(parts):
            spread[:, j], hedge[:, j] = part.spread_values(dates, log_y[:, j], log_x[:, j])
            zscore[:, j] = part.zscore_values(spread[:, j])
        sigma, vol_ratio, std_resid = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
        changes = np.full((n, k), np.nan)
        changes[1:] = np.diff(spread, axis=0)
        for j, part in enumerate(parts):
            # A request that starts after the fitted dates: its first day's change is
            # measured from the last fitted spread, so that day's innovation is not lost.
            last_date, last_spread = self.last_spread_[part.name]
            if n and dates[0] > np.datetime64(last_date, "ns"):
                changes[0, j] = spread[0, j] - last_spread
            volatility = self.garch_parts_[part.name]
            variance, resid, forecast = volatility.filter_values(dates, changes[:, j])
            sigma[:, j] = np.sqrt(forecast) / volatility.scale_
            vol_ratio[:, j] = np.sqrt(forecast / volatility.long_run_variance)
            std_resid[:, j] = resid / np.sqrt(variance)
        columns = [zscore, np.abs(zscore), vol_ratio, std_resid]
        if self.features:
            beta = np.array([p.hedge_ratio for p in parts])
            alpha = np.array([p.intercept for p in parts])
            panel = PairPanel(pd.DatetimeIndex(index), y, x, spread, beta, alpha)
            for feature in self.features:
                computed = feature.compute_panel(panel)
                for column in feature.columns:
                    values = np.asarray(computed.get(column), dtype=float)
                    if values.shape != (n, k):
                        raise ValueError(
                            f"feature {feature.name!r} returned {column!r} of shape "
                            f"{values.shape}, not (dates, pairs) = {(n, k)}"
                        )
                    columns.append(values)
        return {
            "spread": spread,
            "hedge_ratio": hedge,
            "zscore": zscore,
            "garch_sigma": sigma,
            "vol_ratio": vol_ratio,
            "rows": np.stack(columns, axis=2).transpose(1, 0, 2),
        }

    def _windows(
        self, raw_rows: np.ndarray, wanted: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scaled windows ending at each date whose whole window is finite (only at the
        ``wanted`` end dates, when given), their signed inputs oriented by the sign of the
        last day's z-score (raw, before scaling)."""
        rows = raw_rows
        finite = np.isfinite(self.scaler_.transform(rows)).all(axis=1)
        window = self.config.window
        if len(rows) < window:
            return np.empty((0, window, rows.shape[1]), dtype=np.float32), np.empty(0, int)
        if wanted is not None:  # a few end dates: gather those windows only
            ends = np.unique(wanted[wanted >= window - 1])
            bad = np.concatenate([[0], np.cumsum(~finite)])
            ends = ends[bad[ends + 1] == bad[ends + 1 - window]]
            windows = rows[ends[:, None] + np.arange(1 - window, 1)]
        else:
            views = np.lib.stride_tricks.sliding_window_view(rows, window, axis=0)
            ok = np.lib.stride_tricks.sliding_window_view(finite, window).all(axis=1)
            ends = np.nonzero(ok)[0] + window - 1
            windows = views[ok].transpose(0, 2, 1)
        if self.oriented_columns_:  # windows is a copy: boolean and integer indexing copy
            names = self.feature_names
            columns = [names.index(c) for c in self.oriented_columns_]
            side = np.where(rows[ends, MODEL_FEATURES.index("zscore")] < 0, -1.0, 1.0)
            windows[:, :, columns] *= side[:, None, None]
        return np.ascontiguousarray(self.scaler_.transform(windows), dtype=np.float32), ends

    # -- inference -----------------------------------------------------------------------

    def predict(
        self, prices: pd.DataFrame, rule: SignalRule | None = None, all_dates: bool = False
    ) -> pd.DataFrame:
        """Spread, z-score, GARCH volatility forecast, reversion probability and signal.

        Parameters
        ----------
        prices : DataFrame of shape (n_dates, n_symbols)
            Recent prices of the model's symbols (a DatetimeIndex, one column per
            symbol), at least :attr:`min_history` dates; nothing is refitted.
        rule : SignalRule
            Signal thresholds.
        all_dates : bool
            One row per pair and date instead of the latest date only.

        Returns
        -------
        DataFrame with :data:`OUTPUT_COLUMNS`, one row per pair (and date).

        Notes
        -----
        The model trades only after the data it was fitted on: the signal is 0 before its
        last fitted date, and the position path starts flat on that date, as the
        walk-forward's trading window does. So a request that reaches back
        :attr:`min_history` dates before the first new day gives, on every later date,
        exactly the walk-forward's signal, whatever its length. A request that starts
        later begins flat on its own first date (and its volatility state continues from
        the model's last date across the gap): an approximation.
        """
        rule = rule or SignalRule()
        values = self._clean_values(prices)
        if values is None:
            self._check_input(prices)  # raises, naming the problem
            values = prices[self.symbols].to_numpy(dtype=float)
        inputs = self._inputs(prices.index, values)
        n = len(prices)
        scale = threshold_scale(inputs["vol_ratio"], rule, n)
        distance = np.abs(inputs["zscore"])
        # An entry needs entry_z * k <= |z| < stop_z * k (k the day's volatility scale).
        possible = (distance >= rule.entry_z * scale) & (distance < rule.stop_z * scale)
        # On a day with |z| <= exit_z * k every position is closed and none can open, so the
        # position after it is flat whatever came before: for the latest date alone the
        # signal path can start on the day after the last such day, exactly.
        dates = pd.DatetimeIndex(prices.index).as_unit("ns")
        # n (no signal at all) when the request ends before the model's data does.
        anchor = int(dates.searchsorted(np.datetime64(self.data_end_, "ns")))
        starts = np.full(len(self.spread_parts_), anchor, dtype=int)
        if not all_dates:
            flat = distance <= rule.exit_z * scale  # False where z is NaN
            flat[:anchor] = False
            last_flat = n - 1 - np.argmax(flat[::-1], axis=0)
            starts = np.where(flat.any(axis=0), last_flat + 1, anchor)
        # Probabilities matter where an entry is possible (from the start) and on the
        # reported date; the GRU runs on those windows only.
        windows, ends = [], []
        for k in range(len(self.spread_parts_)):
            wanted = None
            if not all_dates:
                candidates = np.nonzero(possible[starts[k] :, k])[0] + starts[k]
                wanted = np.r_[candidates, n - 1]
            w, e = self._windows(inputs["rows"][k], wanted)
            windows.append(w)
            ends.append(e)
        probability = self.sequence_.predict_proba(np.concatenate(windows))
        parts = list(self.spread_parts_.values())
        n_pairs = len(parts)
        prob = np.full((n, n_pairs), np.nan)
        signal = np.zeros((n, n_pairs), dtype=np.int64)
        offset = 0
        for k in range(n_pairs):
            prob[ends[k], k] = probability[offset : offset + len(ends[k])]
            offset += len(ends[k])
            start = int(starts[k])
            signal[start:, k] = positions(
                inputs["zscore"][start:, k], inputs["vol_ratio"][start:, k], prob[start:, k], rule
            )
        hedge = inputs["hedge_ratio"]
        weight_y, weight_x = leg_weights(signal.astype(float), hedge)
        rows = slice(None) if all_dates else slice(n - 1, None)
        dates = dates[rows]
        shown = len(dates)

        def by_pair(values: np.ndarray) -> np.ndarray:  # (dates, pairs) -> pair after pair
            return np.ascontiguousarray(values[rows].T).reshape(-1)

        return pd.DataFrame(
            {
                "pair": np.repeat(np.array([p.name for p in parts], dtype=object), shown),
                "y": np.repeat(np.array([p.y for p in parts], dtype=object), shown),
                "x": np.repeat(np.array([p.x for p in parts], dtype=object), shown),
                "date": np.tile(dates.to_numpy(), n_pairs),
                "hedge_ratio": by_pair(hedge),
                "spread": by_pair(inputs["spread"]),
                "zscore": by_pair(inputs["zscore"]),
                "garch_sigma": by_pair(inputs["garch_sigma"]),
                "reversion_probability": by_pair(prob),
                "signal": by_pair(signal),
                "weight_y": by_pair(weight_y),
                "weight_x": by_pair(weight_x),
            },
            columns=list(OUTPUT_COLUMNS),
        )

    def _clean_values(self, prices: pd.DataFrame) -> np.ndarray | None:
        """The prices of :attr:`symbols` when every check of :meth:`_check_input` passes
        (the serving hot path, without building messages); ``None`` otherwise."""
        index = prices.index
        if not isinstance(index, pd.DatetimeIndex) or len(index) < self.min_history:
            return None
        if not (index.is_monotonic_increasing and index.is_unique) or index.hasnans:
            return None
        columns = prices.columns.get_indexer(self.symbols)
        if (columns < 0).any() or not prices.columns.is_unique:
            return None
        dtypes = prices.dtypes.to_numpy()
        if not all(pd.api.types.is_float_dtype(dtypes[c]) for c in columns):
            return None
        if all(pd.api.types.is_float_dtype(dtype) for dtype in dtypes):
            values = prices.to_numpy(dtype=float)[:, columns]  # one block: no column loop
        else:
            values = prices.iloc[:, columns].to_numpy(dtype=float)
        if not (np.isfinite(values).all() and (values > 0).all()):
            return None
        return cast(np.ndarray, values)

    def _check_input(self, prices: pd.DataFrame) -> None:
        from mlflow_pairs.data.validation import (
            check_date_index,
            check_no_missing,
            check_numeric,
            check_positive_finite,
        )

        origin = "model input"
        missing = [s for s in self.symbols if s not in prices.columns]
        if missing:
            raise DataError(
                "unknown-symbols",
                f"{origin}: missing symbol(s) {', '.join(missing)} "
                f"(the model needs {', '.join(self.symbols)})",
                symbols=missing,
            )
        check_date_index(prices, origin)
        frame = check_numeric(prices[self.symbols], origin)
        check_positive_finite(frame, origin)
        check_no_missing(frame, origin, "none (the model does not fill gaps)")
        if len(frame) < self.min_history:
            raise DataError(
                "too-few-observations",
                f"{origin}: {len(frame)} dates ({format_dates(frame.index[:1])} on), the model "
                f"needs at least {self.min_history}",
                symbols=self.symbols,
            )

    # -- evaluation ----------------------------------------------------------------------

    def classification_frame(self, predicted: pd.DataFrame) -> pd.DataFrame:
        """The candidate days of a :meth:`predict` output (``all_dates=True``) with their
        first-passage label, the GRU's probability, the ``|z|`` baseline's and the
        constant predictor's (the training base rate). Labels use only the dates in
        ``predicted``: days whose outcome lies beyond them are left out."""
        frames = []
        for pair, rows in predicted.groupby("pair", sort=False):
            zscore = rows["zscore"].to_numpy(dtype=float)
            label = self.target(zscore)
            keep = np.isfinite(label) & np.isfinite(rows["reversion_probability"].to_numpy())
            frames.append(
                pd.DataFrame(
                    {
                        "date": rows["date"].to_numpy()[keep],
                        "pair": pair,
                        "label": label[keep],
                        "gru": rows["reversion_probability"].to_numpy(dtype=float)[keep],
                        "zscore": self.baseline_.predict_proba(np.abs(zscore[keep])),
                        "constant": self.base_rate_,
                    }
                )
            )
        columns = ["date", "pair", "label", "gru", "zscore", "constant"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    # -- persistence ---------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write ``model.json`` (configuration, fitted parameters) and ``gru.pt`` (the GRU's
        ``state_dict``); no pickle."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "format_version": _FORMAT_VERSION,
            "sector": self.sector,
            "pairs": self.pairs,
            "features": [f.name for f in self.features],
            "feature_names": self.feature_names,
            "garch": asdict(self.garch),
            "hedge": asdict(self.hedge),
            "training": asdict(self.training),
            "config": asdict(self.config),
            "spread_parts": {k: v.to_dict() for k, v in self.spread_parts_.items()},
            "garch_parts": {k: v.to_dict() for k, v in self.garch_parts_.items()},
            "last_spread": self.last_spread_,
            "data_end": self.data_end_,
            "scaler": {"mean": self.scaler_.mean.tolist(), "std": self.scaler_.std.tolist()},
            "baseline": list(self.baseline_.coef),
            "sequence": self.sequence_.to_dict(),
            "metrics": self.metrics_,
            "pair_metrics": self.pair_metrics_,
            "split": self.split_,
            "sample_counts": self.sample_counts_,
            "base_rate": self.base_rate_,
            "oriented_columns": self.oriented_columns_,
        }
        (directory / _MODEL_FILE).write_text(json.dumps(document, indent=1), "utf-8")
        (directory / _WEIGHTS_FILE).write_bytes(self.sequence_.state_bytes())

    @classmethod
    def load(
        cls,
        directory: str | Path,
        features: Sequence[Feature] = (),
        parts: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> GarchGruModel:
        """Read a model written by :meth:`save`.

        ``features`` are the saved feature names' objects and ``parts`` the part classes
        by kind and name (the flavor resolves both from the installed plugins; the
        built-in parts by default). A missing one is an error naming it.
        """
        directory = Path(directory)
        document: dict[str, Any] = json.loads((directory / _MODEL_FILE).read_text("utf-8"))
        if document.get("format_version") not in _READABLE_FORMATS:
            raise ValueError(
                f"model format {document.get('format_version')} is not supported by this "
                f"version (format {_FORMAT_VERSION}); retrain the model"
            )
        given = {f.name: f for f in features}
        missing = [n for n in document["features"] if n not in given]
        if missing:
            raise ValueError(
                f"the model uses feature(s) {', '.join(missing)}, which no installed "
                "plugin registers; install the sector plugin it was trained with"
            )
        model = cls(
            document["sector"],
            [tuple(p) for p in document["pairs"]],
            [given[n] for n in document["features"]],
            GarchSpec(**document["garch"]),
            TrainingConfig(**document["training"]),
            ModelConfig(**document["config"]),
            HedgeSpec(**document["hedge"]),
            parts,
        )
        model.spread_parts_ = {
            k: SpreadPart.from_dict(v, model.parts.get("hedge", {}))
            for k, v in document["spread_parts"].items()
        }
        vol_class = model._part_class("volatility", model.garch.part)
        model.garch_parts_ = {k: vol_class.from_dict(v) for k, v in document["garch_parts"].items()}
        model.last_spread_ = {k: (v[0], float(v[1])) for k, v in document["last_spread"].items()}
        model.data_end_ = document["data_end"]
        model.scaler_ = _Scaler(
            np.array(document["scaler"]["mean"]), np.array(document["scaler"]["std"])
        )
        model.baseline_ = ZScoreBaseline((document["baseline"][0], document["baseline"][1]))
        model.sequence_ = SequencePart.load(
            document["sequence"], (directory / _WEIGHTS_FILE).read_bytes()
        )
        model.metrics_ = document["metrics"]
        model.pair_metrics_ = document["pair_metrics"]
        model.split_ = document["split"]
        model.sample_counts_ = document["sample_counts"]
        model.base_rate_ = document["base_rate"]
        model.oriented_columns_ = list(document.get("oriented_columns", []))
        if model.feature_names != document["feature_names"]:
            warnings.warn(
                "the installed plugins' feature columns differ from the saved ones",
                RuntimeWarning,
                stacklevel=2,
            )
        return model
