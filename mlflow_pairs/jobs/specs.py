"""Settings to specifications: the one place that maps the configuration onto the stages.

Each stage's spec (:class:`~mlflow_pairs.screening.ScreeningCriteria`,
:class:`~mlflow_pairs.model.GarchSpec`, :class:`~mlflow_pairs.model.HedgeSpec`,
:class:`~mlflow_pairs.model.TrainingConfig`, :class:`~mlflow_pairs.model.ModelConfig`,
:class:`~mlflow_pairs.model.signals.SignalRule`, :class:`~mlflow_pairs.backtest.CostModel`)
takes its defaults from the configuration's schema (:mod:`mlflow_pairs.config`), and the
packaged ``config.yaml`` states the same values; ``tests/config/test_specs.py`` holds the
three together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow_pairs.backtest import CostModel
    from mlflow_pairs.config import Settings
    from mlflow_pairs.model.signals import SignalRule
    from mlflow_pairs.screening import ScreeningCriteria

__all__ = ["model_specs", "screening_criteria", "trading_rules"]


def screening_criteria(settings: Settings) -> ScreeningCriteria:
    """The screening test and filters of ``settings.screening``."""
    from dataclasses import fields

    from mlflow_pairs.screening import ScreeningCriteria

    section = settings.screening
    return ScreeningCriteria(
        **{f.name: getattr(section, f.name) for f in fields(ScreeningCriteria)}
    )


def trading_rules(settings: Settings) -> tuple[SignalRule, CostModel]:
    """The signal rule and cost model of ``settings.backtest``."""
    from mlflow_pairs.backtest import CostModel
    from mlflow_pairs.model.signals import SignalRule

    bt = settings.backtest
    rule = SignalRule(
        entry_z=bt.entry_z,
        exit_z=bt.exit_z,
        stop_z=bt.stop_z,
        max_holding=bt.max_holding,
        min_probability=bt.min_probability,
    )
    costs = CostModel(
        cost_bps=bt.cost_bps,
        borrow_bps=bt.borrow_bps,
        half_spread_bps=bt.half_spread_bps,
        impact_coefficient=bt.impact_coefficient,
        participation=bt.participation,
    )
    return rule, costs


def model_specs(settings: Settings) -> dict[str, Any]:
    """The model's part specifications from ``settings`` (the one place that maps them):
    ``garch``, ``hedge``, ``training`` and ``config`` keyword arguments of
    :class:`~mlflow_pairs.model.GarchGruModel`. The first-passage target takes the signal
    rule's exit, stop and holding limit, so the label is tied to the trade."""
    from dataclasses import fields

    from mlflow_pairs.model import GarchSpec, HedgeSpec, ModelConfig, TrainingConfig

    ml, bt, hedge = settings.ml, settings.backtest, settings.hedge
    return {
        "garch": GarchSpec(**settings.garch.model_dump()),
        "hedge": HedgeSpec(
            part=hedge.part, kalman_delta=hedge.kalman_delta, kalman_obs_var=hedge.kalman_obs_var
        ),
        "training": TrainingConfig(**{f.name: getattr(ml, f.name) for f in fields(TrainingConfig)}),
        "config": ModelConfig(
            window=ml.window,
            horizon=bt.max_holding,
            exit_z=bt.exit_z,
            stop_z=bt.stop_z,
            label_min_z=ml.label_min_z,
            zscore_window=hedge.zscore_window if hedge.zscore == "rolling" else None,
            validation_fraction=ml.validation_fraction,
            test_fraction=ml.test_fraction,
        ),
    }
