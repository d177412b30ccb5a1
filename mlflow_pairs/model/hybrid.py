"""The GARCH-GRU hybrid: per pair a spread part and a GARCH part, per sector one GRU.

Composed like ``arch``'s models from replaceable parts: :class:`~.spread.SpreadPart`
(hedge ratio, spread statistics), :class:`~.volatility.GarchPart` (conditional
volatility) and :class:`~.sequence.SequencePart` (reversion probability from a window of
features). Pure: no MLflow, no I/O besides :meth:`save` and :meth:`load`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlflow_pairs.data.errors import DataError, format_dates
from mlflow_pairs.features import Feature, PairPanel
from mlflow_pairs.model.metrics import classification_metrics
from mlflow_pairs.model.sequence import SequencePart, TrainingConfig
from mlflow_pairs.model.spread import SpreadPart
from mlflow_pairs.model.volatility import GarchPart, GarchSpec
from mlflow_pairs.signals import SignalRule, leg_weights, positions, threshold_scale

__all__ = ["MODEL_FEATURES", "OUTPUT_COLUMNS", "GarchGruModel", "ModelConfig", "reversion_target"]

#: Inputs the model computes itself, before the plugins' features.
MODEL_FEATURES = ("zscore", "garch_vol_ratio", "std_resid")

#: Columns of :meth:`GarchGruModel.predict`'s output.
OUTPUT_COLUMNS = (
    "pair", "y", "x", "date", "hedge_ratio", "spread", "zscore", "garch_sigma",
    "reversion_probability", "signal", "weight_y", "weight_x",
)  # fmt: skip

_MODEL_FILE = "model.json"
_WEIGHTS_FILE = "gru.pt"


@dataclass(frozen=True)
class ModelConfig:
    """Windows, target and chronological split of the hybrid model."""

    window: int = 20
    horizon: int = 5
    reversion_threshold: float = 0.0
    validation_fraction: float = 0.2
    test_fraction: float = 0.2


def reversion_target(zscore: np.ndarray, horizon: int, threshold: float) -> np.ndarray:
    """1 when the spread is closer to its mean ``horizon`` days later by more than
    ``threshold`` standard deviations: ``|z_{t+h}| < |z_t| - threshold``; NaN for the last
    ``horizon`` days, whose future is unknown."""
    distance = np.abs(np.asarray(zscore, dtype=float))
    target = np.full(len(distance), np.nan)
    later = distance[horizon:]
    now = distance[: len(distance) - horizon]
    target[: len(now)] = (later < now - threshold).astype(float)
    target[np.isnan(distance)] = np.nan
    target[: len(now)][np.isnan(later)] = np.nan
    return target


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
        return (rows - self.mean) / self.std


class GarchGruModel:
    """One sector's model: spread and GARCH parts per pair, one GRU for all pairs.

    Parameters
    ----------
    sector : str
        The sector the model serves.
    pairs : sequence of (y, x)
        The pairs, typically the screening's selection.
    features : sequence of Feature
        Plugin features appended to :data:`MODEL_FEATURES` (causal; see the hook docs).
    garch : GarchSpec
        The volatility part's specification.
    training : TrainingConfig
        The sequence part's training settings.
    config : ModelConfig
        Window, target and split.
    """

    def __init__(
        self,
        sector: str,
        pairs: Sequence[tuple[str, str]],
        features: Sequence[Feature] = (),
        garch: GarchSpec | None = None,
        training: TrainingConfig | None = None,
        config: ModelConfig | None = None,
    ) -> None:
        self.sector = sector
        self.pairs = [(str(y), str(x)) for y, x in pairs]
        self.features = list(features)
        self.garch = garch or GarchSpec()
        self.training = training or TrainingConfig()
        self.config = config or ModelConfig()

    # -- shape of the inputs -----------------------------------------------------------

    @property
    def feature_names(self) -> list[str]:
        return [*MODEL_FEATURES, *(c for f in self.features for c in f.columns)]

    @property
    def symbols(self) -> list[str]:
        return list(dict.fromkeys(s for pair in self.pairs for s in pair))

    @property
    def min_history(self) -> int:
        """Fewest price dates a prediction needs: the GRU window after the features'
        own warm-up (and one day for returns)."""
        warmup = max([1, *(f.min_history for f in self.features)])
        return self.config.window + warmup

    # -- fitting -------------------------------------------------------------------------

    def fit(
        self,
        prices: pd.DataFrame,
        *,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ) -> GarchGruModel:
        """Fit every part on the chronological training part of ``prices``.

        Hedge ratios, spread statistics, GARCH parameters and the feature scaler are
        fitted on the training part only and then applied to validation and test dates
        without refitting; the GRU early-stops on validation loss and ``metrics_`` are
        measured on the test part. Labels whose horizon crosses into the next part are
        dropped (a purge gap of ``horizon`` days).
        """
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
        train_prices = prices.iloc[:n_train]
        self.spread_parts_: dict[str, SpreadPart] = {}
        self.garch_parts_: dict[str, GarchPart] = {}
        for y, x in self.pairs:
            part = SpreadPart.fit(train_prices, y, x)
            returns = part.spread(train_prices).diff()
            self.spread_parts_[part.name] = part
            garch = GarchPart(self.garch).fit(returns, part.name)
            garch.extend_state(part.spread(prices).diff())
            self.garch_parts_[part.name] = garch
        all_rows = self._inputs(prices.index, prices[self.symbols].to_numpy(dtype=float))["rows"]
        frames = dict(zip(self.spread_parts_, all_rows, strict=True))
        train_rows = np.concatenate([rows[:n_train] for rows in frames.values()])
        self.scaler_ = _Scaler().fit(train_rows)
        h = cfg.horizon
        bounds = {
            "train": (0, n_train - h),
            "validation": (n_train, n_train + n_val - h),
            "test": (n_train + n_val, n - h),
        }
        samples: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
            k: [] for k in bounds
        }
        for name, frame in frames.items():
            windows, ends = self._windows(frame)
            part = self.spread_parts_[name]
            zscore = part.zscore(part.spread(prices)).to_numpy()
            target = reversion_target(zscore, h, cfg.reversion_threshold)
            for split, (lo, hi) in bounds.items():
                keep = (ends >= lo) & (ends < hi) & ~np.isnan(target[ends])
                samples[split].append(
                    (windows[keep], target[ends[keep]], np.full(int(keep.sum()), name, object))
                )
        stacked = {
            split: (
                np.concatenate([r[0] for r in rows]),
                np.concatenate([r[1] for r in rows]),
                np.concatenate([r[2] for r in rows]),
            )
            for split, rows in samples.items()
        }
        self.sequence_ = SequencePart(self.training).fit(
            (stacked["train"][0], stacked["train"][1]),
            (stacked["validation"][0], stacked["validation"][1]),
            on_epoch=on_epoch,
        )
        test_windows, test_labels, test_pairs = stacked["test"]
        probability = self.sequence_.predict_proba(test_windows)
        self.metrics_ = classification_metrics(test_labels, probability)
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

    # -- features ------------------------------------------------------------------------

    def _inputs(self, index: pd.Index, values: np.ndarray) -> dict[str, Any]:
        """Spreads, z-scores, GARCH outputs (arrays of shape (n_dates, n_pairs)) and the
        unscaled feature rows of every pair (shape (n_pairs, n_dates, n_features)), from
        the prices ``values`` of :attr:`symbols` (in that order) on the dates ``index``."""
        parts = list(self.spread_parts_.values())
        position = {symbol: i for i, symbol in enumerate(self.symbols)}
        y = values[:, [position[p.y] for p in parts]]
        x = values[:, [position[p.x] for p in parts]]
        beta = np.array([p.hedge_ratio for p in parts])
        alpha = np.array([p.intercept for p in parts])
        spread = np.log(y) - beta * np.log(x) - alpha
        zscore = (spread - np.array([p.mean for p in parts])) / np.array([p.std for p in parts])
        n, k = spread.shape
        sigma, vol_ratio, std_resid = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
        changes = np.full((n, k), np.nan)
        changes[1:] = np.diff(spread, axis=0)
        dates = pd.DatetimeIndex(index).as_unit("ns").to_numpy()
        for j, part in enumerate(parts):
            garch = self.garch_parts_[part.name]
            variance, resid, forecast = garch.filter_values(dates, changes[:, j])
            sigma[:, j] = np.sqrt(forecast) / garch.scale_
            vol_ratio[:, j] = np.sqrt(forecast / garch.long_run_variance)
            std_resid[:, j] = resid / np.sqrt(variance)
        columns = [zscore, vol_ratio, std_resid]
        if self.features:
            panel = PairPanel(pd.DatetimeIndex(index), y, x, spread, beta, alpha)
            for feature in self.features:
                computed = feature.compute_panel(panel)
                columns.extend(np.asarray(computed[c], dtype=float) for c in feature.columns)
        return {
            "spread": spread,
            "zscore": zscore,
            "garch_sigma": sigma,
            "vol_ratio": vol_ratio,
            "rows": np.stack(columns, axis=2).transpose(1, 0, 2),
        }

    def _windows(
        self, raw_rows: np.ndarray, wanted: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scaled windows ending at each date whose whole window is finite (only at the
        ``wanted`` end dates, when given)."""
        rows = self.scaler_.transform(raw_rows)
        finite = np.isfinite(rows).all(axis=1)
        window = self.config.window
        if len(rows) < window:
            return np.empty((0, window, rows.shape[1]), dtype=np.float32), np.empty(0, int)
        if wanted is not None:  # a few end dates: gather those windows only
            ends = np.unique(wanted[wanted >= window - 1])
            bad = np.concatenate([[0], np.cumsum(~finite)])
            ends = ends[bad[ends + 1] == bad[ends + 1 - window]]
            gathered = rows[ends[:, None] + np.arange(1 - window, 1)]
            return gathered.astype(np.float32), ends
        views = np.lib.stride_tricks.sliding_window_view(rows, window, axis=0)
        ok = np.lib.stride_tricks.sliding_window_view(finite, window).all(axis=1)
        ends = np.nonzero(ok)[0] + window - 1
        return np.ascontiguousarray(views[ok].transpose(0, 2, 1), dtype=np.float32), ends

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
        starts = np.zeros(len(self.spread_parts_), dtype=int)
        if not all_dates:
            flat = distance <= rule.exit_z * scale  # False where z is NaN
            last_flat = n - 1 - np.argmax(flat[::-1], axis=0)
            starts = np.where(flat.any(axis=0), last_flat + 1, 0)
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
            start = min(int(starts[k]), n - 1)
            signal[start:, k] = positions(
                inputs["zscore"][start:, k], inputs["vol_ratio"][start:, k], prob[start:, k], rule
            )
        hedge = np.array([p.hedge_ratio for p in parts])
        weight_y, weight_x = leg_weights(signal.astype(float), hedge)
        rows = slice(None) if all_dates else slice(n - 1, None)
        dates = pd.DatetimeIndex(prices.index).as_unit("ns")[rows]
        shown = len(dates)

        def by_pair(values: np.ndarray) -> np.ndarray:  # (dates, pairs) -> pair after pair
            return np.ascontiguousarray(values[rows].T).reshape(-1)

        return pd.DataFrame(
            {
                "pair": np.repeat(np.array([p.name for p in parts], dtype=object), shown),
                "y": np.repeat(np.array([p.y for p in parts], dtype=object), shown),
                "x": np.repeat(np.array([p.x for p in parts], dtype=object), shown),
                "date": np.tile(dates.to_numpy(), n_pairs),
                "hedge_ratio": np.repeat(hedge, shown),
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
        return values

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

    # -- persistence ---------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write ``model.json`` (configuration, fitted parameters) and ``gru.pt`` (the GRU's
        ``state_dict``); no pickle."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "format_version": 1,
            "sector": self.sector,
            "pairs": self.pairs,
            "features": [f.name for f in self.features],
            "feature_names": self.feature_names,
            "garch": asdict(self.garch),
            "training": asdict(self.training),
            "config": asdict(self.config),
            "spread_parts": {k: v.to_dict() for k, v in self.spread_parts_.items()},
            "garch_parts": {k: v.to_dict() for k, v in self.garch_parts_.items()},
            "scaler": {"mean": self.scaler_.mean.tolist(), "std": self.scaler_.std.tolist()},
            "sequence": self.sequence_.to_dict(),
            "metrics": self.metrics_,
            "pair_metrics": self.pair_metrics_,
            "split": self.split_,
            "sample_counts": self.sample_counts_,
            "base_rate": self.base_rate_,
        }
        (directory / _MODEL_FILE).write_text(json.dumps(document, indent=1), "utf-8")
        (directory / _WEIGHTS_FILE).write_bytes(self.sequence_.state_bytes())

    @classmethod
    def load(
        cls, directory: str | Path, features: Sequence[Feature] | None = None
    ) -> GarchGruModel:
        """Read a model written by :meth:`save`. ``features`` default to the registered
        plugin features of the saved names (an unknown name is an error naming it)."""
        directory = Path(directory)
        document: dict[str, Any] = json.loads((directory / _MODEL_FILE).read_text("utf-8"))
        if features is None:
            from mlflow_pairs.plugins import get_features

            registered = get_features()
            unknown = [n for n in document["features"] if n not in registered]
            if unknown:
                raise ValueError(
                    f"the model uses feature(s) {', '.join(unknown)}, which no installed "
                    "plugin registers; install the sector plugin it was trained with"
                )
            features = [registered[n] for n in document["features"]]
        model = cls(
            document["sector"],
            [tuple(p) for p in document["pairs"]],
            features,
            GarchSpec(**document["garch"]),
            TrainingConfig(**document["training"]),
            ModelConfig(**document["config"]),
        )
        model.spread_parts_ = {
            k: SpreadPart.from_dict(v) for k, v in document["spread_parts"].items()
        }
        model.garch_parts_ = {k: GarchPart.from_dict(v) for k, v in document["garch_parts"].items()}
        model.scaler_ = _Scaler(
            np.array(document["scaler"]["mean"]), np.array(document["scaler"]["std"])
        )
        model.sequence_ = SequencePart.load(
            document["sequence"], (directory / _WEIGHTS_FILE).read_bytes()
        )
        model.metrics_ = document["metrics"]
        model.pair_metrics_ = document["pair_metrics"]
        model.split_ = document["split"]
        model.sample_counts_ = document["sample_counts"]
        model.base_rate_ = document["base_rate"]
        if model.feature_names != document["feature_names"]:
            warnings.warn(
                "the installed plugins' feature columns differ from the saved ones",
                RuntimeWarning,
                stacklevel=2,
            )
        return model
