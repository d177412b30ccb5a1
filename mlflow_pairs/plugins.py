"""The plugin manager: loads plugins once, collects what they register, reports failures.

Built-in behaviour is itself a set of plugins (:mod:`mlflow_pairs.default_plugins`),
registered through the same hooks as a pip-installed sector plugin. Installed plugins are
found through the entry-point group ``mlflow_pairs``; ``MLFLOW_PAIRS_LOAD_PLUGINS`` limits
which of them load (a comma-separated list of entry-point names; empty loads none).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from mlflow_pairs import __version__, hookspecs
from mlflow_pairs.data.sources import PriceSource, Universe
from mlflow_pairs.errors import MlflowPairsError, NotFoundError
from mlflow_pairs.features import Feature

if TYPE_CHECKING:
    import click

T = TypeVar("T")

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LOAD_PLUGINS_ENV",
    "PluginConflictError",
    "PluginInfo",
    "feature_distributions",
    "features_for_sector",
    "get_features",
    "get_model_parts",
    "get_price_source",
    "get_price_sources",
    "get_universe",
    "get_universes",
    "list_plugins",
    "load_plugins",
    "part_distributions",
    "plugin_failures",
    "plugin_sources",
    "pm",
    "register_commands",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mlflow_pairs"
LOAD_PLUGINS_ENV = "MLFLOW_PAIRS_LOAD_PLUGINS"
DEFAULT_PLUGINS = (
    "mlflow_pairs.default_plugins.sample",
    "mlflow_pairs.default_plugins.files",
    "mlflow_pairs.default_plugins.features",
    "mlflow_pairs.default_plugins.parts",
)

#: What each kind of model part must provide (checked when a plugin registers one).
_PART_METHODS = {
    "hedge": ("fit", "filter", "to_dict", "from_dict"),
    "volatility": ("fit", "extend_state", "filter_values", "to_dict", "from_dict"),
}

pm = pluggy.PluginManager("mlflow_pairs")
pm.add_hookspecs(hookspecs)

_lock = threading.RLock()
_loaded = False
_failures: dict[str, str] = {}
_distributions: dict[str, tuple[str, str]] = {}


class PluginConflictError(MlflowPairsError):
    """Two plugins registered the same universe, price source or feature name."""

    exit_code = 2


@dataclass(frozen=True)
class PluginInfo:
    """A plugin as ``plugins list`` shows it."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool
    error: str | None = None


def _report(plugin: str, reason: str) -> None:
    with _lock:
        first = plugin not in _failures
        _failures.setdefault(plugin, reason)
    if first:
        logger.warning("plugin %r failed and was skipped: %s", plugin, reason)


def load_plugins() -> None:
    """Register the built-in plugins and the installed entry points, once (idempotent).

    A plugin that fails to import or does not match the hook specifications is skipped,
    named in a warning and listed by :func:`plugin_failures`; the others load.
    """
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        for module_name in DEFAULT_PLUGINS:
            if not pm.has_plugin(module_name):
                pm.register(importlib.import_module(module_name), name=module_name)
            _distributions[module_name] = ("mlflow-pairs", __version__)
        allowed = os.environ.get(LOAD_PLUGINS_ENV)
        names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if names is not None and entry_point.name not in names:
                continue
            if pm.has_plugin(entry_point.name) or pm.is_blocked(entry_point.name):
                continue
            dist = entry_point.dist
            _distributions[entry_point.name] = (
                dist.name if dist else "?",
                dist.version if dist else "?",
            )
            try:
                plugin = entry_point.load()
                pm.register(plugin, name=entry_point.name)
                pm.check_pending()
            except Exception as exc:
                if pm.has_plugin(entry_point.name):
                    pm.unregister(name=entry_point.name)
                _report(entry_point.name, f"{type(exc).__name__}: {exc}")


def plugin_failures() -> dict[str, str]:
    """Plugins that failed to load or raised in a hook: ``{name: reason}``."""
    load_plugins()
    with _lock:
        return dict(_failures)


def list_plugins() -> list[PluginInfo]:
    """Every registered plugin (built-ins first) and every one that failed to load or
    whose hook raised (every hook is called first, so a raising one shows as failed)."""
    load_plugins()
    for collect in (get_universes, get_price_sources, get_features, get_model_parts):
        with contextlib.suppress(PluginConflictError):  # reported where the name is used
            collect()
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or []))
        dist, version = _distributions.get(name, ("", ""))
        infos.append(
            PluginInfo(name, dist, version, hooks, name in DEFAULT_PLUGINS, _failures.get(name))
        )
    registered = {info.name for info in infos}
    for name, reason in plugin_failures().items():
        if name not in registered:
            dist, version = _distributions.get(name, ("", ""))
            infos.append(PluginInfo(name, dist, version, (), False, reason))
    return sorted(infos, key=lambda info: (not info.builtin, info.name))


def _collect(
    hook_name: str, kind: str, expected: type, key: Callable[[Any], str]
) -> list[tuple[str, Any, str]]:
    """Call ``hook_name`` on each plugin in registration order: [(name, object, plugin)].

    A plugin whose hook raises is reported and skipped; the same name from two plugins
    is a :class:`PluginConflictError` naming both.
    """
    load_plugins()
    owners: dict[str, str] = {}
    collected: list[tuple[str, Any, str]] = []
    hook = getattr(pm.hook, hook_name)
    # pluggy calls the last registered first; registration order reads better.
    for impl in reversed(hook.get_hookimpls()):
        plugin_name = impl.plugin_name
        batch: list[tuple[str, Any, str]] = []

        def register(
            obj: object, _plugin: str = plugin_name, _batch: list[tuple[str, Any, str]] = batch
        ) -> None:
            if not isinstance(obj, expected):
                raise TypeError(f"register() takes a {expected.__name__}, got {type(obj).__name__}")
            name = key(obj)
            if name in owners or any(name == item[0] for item in _batch):
                other = owners.get(name, _plugin)
                raise PluginConflictError(
                    f"{kind} {name!r} is registered by both plugin {other!r} and plugin "
                    f"{_plugin!r}; uninstall one of them or limit {LOAD_PLUGINS_ENV}"
                )
            _batch.append((name, obj, _plugin))

        try:
            impl.function(**{arg: register for arg in impl.argnames if arg == "register"})
        except PluginConflictError:
            raise
        except Exception as exc:
            _report(plugin_name, f"{hook_name} raised {type(exc).__name__}: {exc}")
            continue
        for name, obj, owner in batch:
            owners[name] = owner
            collected.append((name, obj, owner))
    return collected


def get_universes() -> dict[str, Universe]:
    """Registered universes by name (each with ``plugin`` set to its plugin's name)."""
    return {
        name: replace(universe, plugin=owner)
        for name, universe, owner in _collect(
            "register_universes", "universe", Universe, lambda u: u.name
        )
    }


def get_price_sources() -> dict[str, PriceSource]:
    """Registered price sources by name."""
    return {
        name: source
        for name, source, _ in _collect(
            "register_price_sources", "price source", PriceSource, lambda s: s.name
        )
    }


def get_features() -> dict[str, Feature]:
    """Registered features by name; two features declaring one column conflict too."""
    features: dict[str, Feature] = {}
    column_owner: dict[str, tuple[str, str]] = {}
    for name, feature, owner in _collect("register_features", "feature", Feature, lambda f: f.name):
        for column in feature.columns:
            if column in column_owner:
                other_feature, other_plugin = column_owner[column]
                raise PluginConflictError(
                    f"feature column {column!r} is declared by both feature {other_feature!r} "
                    f"(plugin {other_plugin!r}) and feature {name!r} (plugin {owner!r})"
                )
            column_owner[column] = (name, owner)
        features[name] = feature
    return features


def plugin_sources(model_features: list[str], parts: dict[str, str]) -> dict[str, str]:
    """``{"feature:NAME" | "hedge:NAME" | "volatility:NAME": "distribution==version"}`` for
    the named features and parts that installed plugins (not the built-ins) provide: what
    a user must install to load a model that uses them."""
    load_plugins()
    owners = {
        f"feature:{name}": plugin
        for name, _, plugin in _collect("register_features", "feature", object, lambda f: f.name)
        if name in model_features
    }
    for kind, name in parts.items():
        owners.update(
            {
                f"{kind}:{found}": plugin
                for found, _, plugin in _collect_parts(kind)
                if found == name
            }
        )
    return {
        key: "==".join(_distributions[plugin])
        for key, plugin in owners.items()
        if plugin not in DEFAULT_PLUGINS and plugin in _distributions
    }


def feature_distributions(names: list[str]) -> list[str]:
    """Installed distributions (not mlflow-pairs itself) providing the named features."""
    owners = {
        name: plugin
        for name, _, plugin in _collect("register_features", "feature", object, lambda f: f.name)
    }
    dists = [
        _distributions[owners[name]][0]
        for name in names
        if owners.get(name) not in (None, *DEFAULT_PLUGINS) and owners[name] in _distributions
    ]
    return list(dict.fromkeys(dists))


def _collect_parts(kind: str) -> list[tuple[str, type, str]]:
    def name_of(cls: Any) -> str:
        missing = [m for m in _PART_METHODS[kind] if not callable(getattr(cls, m, None))]
        if not isinstance(getattr(cls, "name", None), str) or missing:
            raise TypeError(
                f"{kind} part {getattr(cls, '__name__', cls)!r} lacks a str 'name' or "
                f"method(s) {', '.join(missing) or '-'}"
            )
        return str(cls.name)

    return _collect(f"register_{kind}_parts", f"{kind} part", type, name_of)


def get_model_parts() -> dict[str, dict[str, type]]:
    """Registered model parts: ``{"hedge": {name: class}, "volatility": {name: class}}``."""
    return {kind: {name: cls for name, cls, _ in _collect_parts(kind)} for kind in _PART_METHODS}


def part_distributions(names: dict[str, str]) -> list[str]:
    """Installed distributions (not mlflow-pairs itself) providing the named parts
    (``{kind: name}``)."""
    dists = []
    for kind, name in names.items():
        for registered, _, plugin in _collect_parts(kind):
            if registered == name and plugin not in DEFAULT_PLUGINS and plugin in _distributions:
                dists.append(_distributions[plugin][0])
    return list(dict.fromkeys(dists))


def features_for_sector(sector: str) -> list[Feature]:
    """Registered features a ``sector`` model uses: those without a sector limit and
    those that name the sector, in registration order."""
    return [f for f in get_features().values() if f.sectors is None or sector in f.sectors]


def _lookup(registry: dict[str, T], kind: str, name: str) -> T:
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise NotFoundError(f"unknown {kind} {name!r} (available: {known})")
    return registry[name]


def get_universe(name: str) -> Universe:
    """The universe called ``name``; an unknown name is an error listing the known ones."""
    return _lookup(get_universes(), "universe", name)


def get_price_source(name: str) -> PriceSource:
    """The price source called ``name``; an unknown name is an error listing the known ones."""
    return _lookup(get_price_sources(), "price source", name)


def register_commands(cli: click.Group) -> None:
    """Let each plugin add commands to ``cli``; a plugin that raises is reported and skipped."""
    load_plugins()
    for impl in reversed(pm.hook.register_commands.get_hookimpls()):
        try:
            impl.function(**{arg: cli for arg in impl.argnames if arg == "cli"})
        except Exception as exc:
            _report(impl.plugin_name, f"register_commands raised {type(exc).__name__}: {exc}")
