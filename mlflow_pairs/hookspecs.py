"""Hook specifications of mlflow-pairs (pluggy project name ``mlflow_pairs``).

A plugin is a module or object with functions marked ``@hookimpl`` whose names match the
specs below, published under the entry-point group ``mlflow_pairs``. Plugins hand their
objects over through a ``register`` callback; the host collects them, rejects duplicate
names (naming both plugins) and reports a plugin that raises without stopping.

None of the hooks is ``firstresult``: every plugin's implementation is called, and the
return value is ignored. ``docs/plugins.md`` shows a complete plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from mlflow_pairs.data.sources import PriceSource, Universe
    from mlflow_pairs.features import Feature

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("mlflow_pairs")
hookimpl = pluggy.HookimplMarker("mlflow_pairs")


@hookspec
def register_universes(register: Callable[[Universe], None]) -> None:
    """Register stock universes.

    Called whenever the host lists or looks up universes (``universes list``, ``screen
    --universe``, ``train --sector``), after plugins are loaded.

    Parameters
    ----------
    register : callable
        Call ``register(Universe(...))`` once per universe. A universe has a name (unique
        across all plugins), a GICS sector, its symbols, the name of the price source that
        loads them, and a description.
    """


@hookspec
def register_price_sources(register: Callable[[PriceSource], None]) -> None:
    """Register price sources.

    Called whenever the host loads prices by source name: the ``price_source`` of a
    universe, or ``csv`` / ``parquet`` for ``--prices FILE``.

    Parameters
    ----------
    register : callable
        Call ``register(source)`` with a :class:`~mlflow_pairs.data.PriceSource` instance
        whose ``name`` is unique across all plugins. Its ``load`` returns a wide DataFrame:
        a DatetimeIndex and one float column of prices per symbol.
    """


@hookspec
def register_features(register: Callable[[Feature], None]) -> None:
    """Register per-pair feature builders for the sequence model.

    Called when the host builds the model's inputs for a pair.

    Parameters
    ----------
    register : callable
        Call ``register(feature)`` with a :class:`~mlflow_pairs.features.Feature` whose
        ``name`` and output ``columns`` are unique across all plugins. ``compute`` must use
        only data up to each date (no look-ahead); a generic test checks every registered
        feature for this.
    """


@hookspec
def register_hedge_parts(register: Callable[[type], None]) -> None:
    """Register hedge parts: how a pair's hedge ratio and intercept move over time.

    Called when a model is built (``train``) or loaded (the ``garch_gru`` flavor), after
    plugins are loaded. ``hedge.part`` in the configuration names the part to use.

    Parameters
    ----------
    register : callable
        Call ``register(cls)`` with a class implementing
        :class:`~mlflow_pairs.model.HedgePart`: a ``name`` class attribute unique across
        plugins, ``__init__(spec: HedgeSpec)``, ``fit``, ``filter`` (causal: the hedge on
        each date from data before it), ``to_dict`` and a ``from_dict`` classmethod. The
        built-ins ``static`` and ``kalman`` register through this hook.
    """


@hookspec
def register_volatility_parts(register: Callable[[type], None]) -> None:
    """Register volatility parts: conditional volatility of a pair's spread changes.

    Called when a model is built (``train``) or loaded (the ``garch_gru`` flavor), after
    plugins are loaded. ``garch.part`` in the configuration names the part to use.

    Parameters
    ----------
    register : callable
        Call ``register(cls)`` with a class implementing
        :class:`~mlflow_pairs.model.VolatilityPart`: a ``name`` class attribute unique
        across plugins, ``__init__(spec: GarchSpec)``, ``fit``, ``extend_state``,
        ``filter_values``, ``long_run_variance``, ``scale_``, ``to_dict`` and a
        ``from_dict`` classmethod. The built-ins ``garch`` (GJR with ``o > 0``) and
        ``egarch`` register through this hook.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``mlflow-pairs`` command line.

    Called once, when the command line starts, before arguments are parsed.

    Parameters
    ----------
    cli : click.Group
        The top-level group; add commands with ``@cli.command()`` or ``cli.add_command``.
    """
