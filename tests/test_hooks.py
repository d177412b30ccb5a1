"""One test per hook, and a meta-test that every hook has a test and a documented example."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlflow_pairs import hookimpl, hookspecs
from mlflow_pairs.data import PriceSource, Universe
from mlflow_pairs.features import Feature, PairFrame
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.model import GarchPart, SpreadPart
from mlflow_pairs.plugins import (
    get_features,
    get_model_parts,
    get_price_sources,
    get_universes,
    pm,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def hook_names() -> list[str]:
    return sorted(
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "mlflow_pairs_spec")
    )


class ConstantPrices(PriceSource):
    name = "inline-constant"

    def load(self, symbols, start, end, location=None):  # type: ignore[no-untyped-def]
        index = pd.bdate_range("2021-01-01", periods=10)
        return pd.DataFrame({s: 10.0 + i for i, s in enumerate(symbols or ["A", "B"])}, index=index)


class Doubled(Feature):
    name = "inline_doubled_spread"
    columns = ("inline_doubled_spread",)

    def compute(self, pair: PairFrame) -> pd.DataFrame:
        return pd.DataFrame({"inline_doubled_spread": 2 * pair.spread}, index=pair.spread.index)


class UnitHedge:
    """The docs' example hedge part: 1:1, intercept from the fitting window."""

    name = "inline-unit"

    def __init__(self, spec: object = None) -> None:
        self.intercept = 0.0

    def fit(self, dates, log_y, log_x, *, hedge_ratio, intercept):  # type: ignore[no-untyped-def]
        self.intercept = float(np.mean(log_y - log_x))
        return self

    def filter(self, dates, log_y, log_x):  # type: ignore[no-untyped-def]
        return np.ones(len(dates)), np.full(len(dates), self.intercept)

    def to_dict(self) -> dict[str, float]:
        return {"intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> UnitHedge:
        part = cls()
        part.intercept = float(data["intercept"])
        return part


class HalfGarch(GarchPart):
    """A third-party volatility part: the built-in GARCH under another name."""

    name = "inline-garch"


class InlinePlugin:
    @hookimpl
    def register_hedge_parts(self, register):  # type: ignore[no-untyped-def]
        register(UnitHedge)

    @hookimpl
    def register_volatility_parts(self, register):  # type: ignore[no-untyped-def]
        register(HalfGarch)

    @hookimpl
    def register_universes(self, register):  # type: ignore[no-untyped-def]
        register(
            Universe(
                name="inline-universe",
                sector="energy",
                symbols=("A", "B"),
                price_source="inline-constant",
                description="inline",
            )
        )

    @hookimpl
    def register_price_sources(self, register):  # type: ignore[no-untyped-def]
        register(ConstantPrices())

    @hookimpl
    def register_features(self, register):  # type: ignore[no-untyped-def]
        register(Doubled())

    @hookimpl
    def register_commands(self, cli):  # type: ignore[no-untyped-def]
        @cli.command("inline-hello")
        def inline_hello() -> None:
            """Say hello from an inline plugin."""
            click.echo("hello from inline")


@pytest.fixture
def inline_plugin() -> Iterator[None]:
    pm.register(InlinePlugin(), name="inline-test")
    yield
    pm.unregister(name="inline-test")


def test_hook_register_universes(inline_plugin: None) -> None:
    universe = get_universes()["inline-universe"]
    assert universe.plugin == "inline-test"
    assert universe.symbols == ("A", "B")


def test_hook_register_price_sources(inline_plugin: None) -> None:
    assert isinstance(get_price_sources()["inline-constant"], ConstantPrices)
    panel = load_panel(universe="inline-universe")
    assert panel.source == "inline-constant"
    assert panel.prices["B"].eq(11.0).all()


def test_hook_register_features(inline_plugin: None) -> None:
    feature = get_features()["inline_doubled_spread"]
    index = pd.bdate_range("2021-01-01", periods=3)
    pair = PairFrame.from_prices(
        pd.Series([1.0, 2.0, 4.0], index=index),
        pd.Series([1.0, 1.0, 1.0], index=index),
        hedge_ratio=1.0,
    )
    values = feature.compute(pair)["inline_doubled_spread"].to_numpy()
    assert values.tolist() == pytest.approx([0.0, 2 * 0.6931471805599453, 2 * 1.3862943611198906])


def test_hook_register_hedge_parts(inline_plugin: None) -> None:
    parts = get_model_parts()["hedge"]
    assert parts["inline-unit"] is UnitHedge
    assert {"static", "kalman"} <= set(parts)
    index = pd.bdate_range("2021-01-01", periods=4)
    prices = pd.DataFrame({"Y": [2.0, 2.2, 2.1, 2.4], "X": [1.0, 1.1, 1.0, 1.2]}, index=index)
    spread = SpreadPart.fit(prices, "Y", "X", UnitHedge()).spread(prices)
    logs = np.log(prices)
    expected = logs["Y"] - logs["X"] - (logs["Y"] - logs["X"]).mean()
    np.testing.assert_allclose(spread, expected, rtol=1e-12)


def test_hook_register_volatility_parts(inline_plugin: None) -> None:
    parts = get_model_parts()["volatility"]
    assert parts["inline-garch"] is HalfGarch
    assert {"garch", "egarch"} <= set(parts)


def test_hook_register_commands(inline_plugin: None) -> None:
    from mlflow_pairs.cli import cli
    from mlflow_pairs.plugins import register_commands

    register_commands(cli)
    try:
        result = CliRunner().invoke(cli, ["inline-hello"])
        assert result.exit_code == 0
        assert result.output == "hello from inline\n"
    finally:
        cli.commands.pop("inline-hello", None)


def test_every_hook_has_a_test_and_a_documented_example() -> None:
    names = hook_names()
    assert names == [
        "register_commands",
        "register_features",
        "register_hedge_parts",
        "register_price_sources",
        "register_universes",
        "register_volatility_parts",
    ]
    module = sys.modules[__name__]
    docs = DOCS.read_text("utf-8")
    for name in names:
        assert hasattr(module, f"test_hook_{name}"), f"hook {name} has no test_hook_{name}"
        assert f"### {name}(" in docs, f"hook {name} has no section in docs/plugins.md"
        assert re.search(rf"@hookimpl\s+def {name}\(", docs), f"hook {name} has no example"
        spec = getattr(hookspecs, name)
        assert "Called" in (spec.__doc__ or ""), f"hook {name} lacks a docstring"
        assert not spec.mlflow_pairs_spec.get("firstresult"), "docs say no hook is firstresult"
