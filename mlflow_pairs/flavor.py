"""The ``garch_gru`` MLflow flavor: save, log and load GARCH-GRU sector models.

Laid out like MLflow's own flavor modules (``mlflow.prophet``)::

    from mlflow_pairs import flavor

    info = flavor.log_model(model, name="model", input_example=recent_prices,
                            registered_model_name="pairs_trading_gru_garch_technology")
    native = flavor.load_model(info.model_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/pairs_trading_gru_garch_technology@champion")
    pyfunc.predict(recent_prices, params={"entry_z": 2.5})

The model directory holds ``MLmodel``, the environment files and ``data/`` with
``model.json`` (configuration, hedge ratios, GARCH parameters and state, scaler) and
``gru.pt`` (the GRU's ``state_dict``, loaded with ``weights_only=True``): no pickle; and
``wheels/`` with the wheels of ``mlflow-pairs`` and the sector plugins the model uses (no
public index has them), so an isolated environment can be built from the model alone.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from mlflow_pairs import __version__
from mlflow_pairs.errors import NotFoundError
from mlflow_pairs.model import OUTPUT_COLUMNS, GarchGruModel
from mlflow_pairs.model.signals import SignalRule

__all__ = [
    "FLAVOR_NAME",
    "FLAVOR_VERSION",
    "get_default_conda_env",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "model_signature",
    "save_model",
]

FLAVOR_NAME = "garch_gru"
FLAVOR_VERSION = 1
_DATA_SUBPATH = "data"

#: Most rows a pyfunc request may have (wide: dates; long: date-symbol rows). A scoring
#: request is refused with HTTP 413 beyond it, before the model does any work. The
#: environment variable wins over the model's ``max_request_rows`` config (saved in the
#: MLmodel file; ``model_config=`` of ``mlflow.pyfunc.load_model`` overrides it).
MAX_REQUEST_ROWS = 20_000
MAX_REQUEST_ROWS_ENV = "MLFLOW_PAIRS_MAX_REQUEST_ROWS"

#: Signature params: (name, MLflow type, default). They override the signal thresholds.
PARAMS: tuple[tuple[str, str, Any], ...] = (
    ("entry_z", "double", SignalRule.entry_z),
    ("exit_z", "double", SignalRule.exit_z),
    ("stop_z", "double", SignalRule.stop_z),
    ("min_probability", "double", SignalRule.min_probability),
    ("max_holding", "long", SignalRule.max_holding),
    ("all_dates", "boolean", False),
)


def _pinned(distribution: str) -> str | None:
    try:
        installed = version(distribution)
    except PackageNotFoundError:
        return None
    return f"{distribution}=={installed.split('+', 1)[0]}"  # drop local labels (+cpu)


def _plugin_distributions(model: GarchGruModel | None) -> list[str]:
    """Distributions of the plugins whose features the model uses (built-ins excluded)."""
    if model is None:
        return []
    from mlflow_pairs.plugins import feature_distributions, part_distributions

    parts = part_distributions({"hedge": model.hedge.part, "volatility": model.garch.part})
    return list(dict.fromkeys([*feature_distributions([f.name for f in model.features]), *parts]))


def get_default_pip_requirements(model: GarchGruModel | None = None) -> list[str]:
    """``mlflow-pairs``, the sector plugins the model uses, ``arch``, ``torch``, ``pandas``,
    ``numpy`` and ``mlflow``, pinned to the installed versions (local labels dropped)."""
    names = [
        "mlflow-pairs",
        *_plugin_distributions(model),
        "mlflow",
        "arch",
        "torch",
        "pandas",
        "numpy",
        "scipy",
        "pluggy",
    ]
    return [req for req in (_pinned(name) for name in names) if req]


def get_default_conda_env(model: GarchGruModel | None = None) -> dict[str, Any]:
    from mlflow_pairs._mlflow_private import _mlflow_conda_env

    env = _mlflow_conda_env(additional_pip_deps=get_default_pip_requirements(model))
    return cast("dict[str, Any]", env)


def model_signature(model: GarchGruModel) -> Any:
    """Input: wide (``date`` + one column per symbol) or long (``date``, ``symbol``,
    ``price``) prices, so symbol, ``symbol`` and ``price`` columns are optional and the
    model checks what is present. Output: :data:`OUTPUT_COLUMNS`. Params: thresholds."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    # Dates as datetimes or ISO strings (what pd.read_csv gives without parse_dates, and
    # pandas 3's string dtype, which MLflow's datetime enforcement refuses), and prices as
    # given (a "double" column would turn a JSON true into 1.0 before the model sees it):
    # the model parses and validates both itself.
    columns: list[Any] = [ColSpec(AnyType(), "date")]
    inputs = Schema(
        columns
        + [ColSpec(AnyType(), symbol, required=False) for symbol in model.symbols]
        + [ColSpec("string", "symbol", required=False), ColSpec(AnyType(), "price", required=False)]
    )
    types = {"pair": "string", "y": "string", "x": "string", "date": "datetime", "signal": "long"}
    outputs = Schema([ColSpec(types.get(c, "double"), c) for c in OUTPUT_COLUMNS])
    params = ParamSchema([ParamSpec(name, kind, default) for name, kind, default in PARAMS])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def example_request(model: GarchGruModel, prices: pd.DataFrame) -> pd.DataFrame:
    """The last ``min_history`` dates of ``prices`` in the wide input format."""
    recent = prices[model.symbols].iloc[-model.min_history :]
    return recent.reset_index(names="date")


def save_model(
    model: GarchGruModel,
    path: str | os.PathLike[str],
    conda_env: Any = None,
    mlflow_model: Any = None,
    signature: Any = None,
    input_example: pd.DataFrame | None = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
    data_hash: str | None = None,
) -> None:
    """Save ``model`` in the ``garch_gru`` flavor (with the pyfunc flavor) at ``path``.

    The signature defaults to :func:`model_signature`. ``data_hash`` (the training
    panel's content hash) is recorded in the MLmodel file with the sector, pairs, features
    and the versions of the plugins that provided them.
    """
    import yaml
    from mlflow import pyfunc
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    from mlflow_pairs import _mlflow_private as private

    private._validate_env_arguments(conda_env, pip_requirements, extra_pip_requirements)
    path = os.path.abspath(path)
    private._validate_and_prepare_target_save_path(path)
    mlflow_model = mlflow_model or Model()
    if input_example is not None:
        private._save_example(mlflow_model, input_example, path)
    mlflow_model.signature = signature if signature is not None else model_signature(model)
    if metadata is not None:
        mlflow_model.metadata = metadata
    model.save(Path(path) / _DATA_SUBPATH)
    pyfunc.add_to_model(
        mlflow_model,
        loader_module="mlflow_pairs.flavor",
        data=_DATA_SUBPATH,
        conda_env=private._CONDA_ENV_FILE_NAME,
        python_env=private._PYTHON_ENV_FILE_NAME,
        model_config={"max_request_rows": MAX_REQUEST_ROWS},
    )
    mlflow_model.add_flavor(
        FLAVOR_NAME,
        flavor_version=FLAVOR_VERSION,
        mlflow_pairs_version=__version__,
        data=_DATA_SUBPATH,
        sector=model.sector,
        pairs=[f"{y}/{x}" for y, x in model.pairs],
        features=model.feature_names,
        plugin_versions=_plugin_versions(model),
        plugin_sources=_plugin_sources(model),
        training_data_hash=data_hash or "",
        min_history=model.min_history,
        # The last date the model was fitted on: a request that reaches back min_history
        # dates before the day after it gets the walk-forward's own signal exactly.
        data_end=model.data_end_,
    )
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))
    if conda_env is None:
        defaults = get_default_pip_requirements(model) if pip_requirements is None else None
        conda_env, requirements, constraints = private._process_pip_requirements(
            defaults, pip_requirements, extra_pip_requirements
        )
    else:
        conda_env, requirements, constraints = private._process_conda_env(conda_env)
    conda_env, requirements = _bundle_unpublished(model, path, conda_env, requirements)
    with open(os.path.join(path, private._CONDA_ENV_FILE_NAME), "w") as stream:
        yaml.safe_dump(conda_env, stream=stream, default_flow_style=False)
    if constraints:
        private.write_to(os.path.join(path, private._CONSTRAINTS_FILE_NAME), "\n".join(constraints))
    private.write_to(os.path.join(path, private._REQUIREMENTS_FILE_NAME), "\n".join(requirements))
    private._PythonEnv.current().to_yaml(os.path.join(path, private._PYTHON_ENV_FILE_NAME))


def _plugin_sources(model: GarchGruModel) -> dict[str, str]:
    from mlflow_pairs.plugins import plugin_sources

    parts = {"hedge": model.hedge.part, "volatility": model.garch.part}
    return plugin_sources([f.name for f in model.features], parts)


def _bundle_unpublished(
    model: GarchGruModel, path: str, conda_env: dict[str, Any], requirements: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """Bundle wheels of ``mlflow-pairs`` and the model's sector plugins (no public index
    has them) in ``path/wheels`` and point the requirements, and the pip section of the
    conda environment, at them (``wheels/<file>.whl``, relative to the model directory).

    Only distributions that the requirements name are bundled, so ``pip_requirements`` or
    a ``conda_env`` that leaves them out is respected; a line that names one, pinned or not,
    is replaced by the wheel of the code running now (see :mod:`mlflow_pairs._packaging`).
    Any installed plugin distribution counts, so ``extra_pip_requirements`` may add one."""
    from importlib.metadata import entry_points

    from mlflow_pairs import _packaging
    from mlflow_pairs.plugins import ENTRY_POINT_GROUP

    installed = [ep.dist.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.dist]
    names = ["mlflow-pairs", *_plugin_distributions(model), *installed]
    ours = {_packaging.requirement_name(n) for n in names}
    named = [n for n in map(_packaging.requirement_name, requirements) if n and n in ours]
    bundled = _packaging.bundle(named, path)
    if not bundled:
        return conda_env, requirements
    for dependency in conda_env.get("dependencies") or []:
        if isinstance(dependency, dict) and "pip" in dependency:
            dependency["pip"] = _packaging.replace_requirements(dependency["pip"], bundled)
    return conda_env, _packaging.replace_requirements(requirements, bundled)


def _plugin_versions(model: GarchGruModel) -> dict[str, str]:
    from mlflow_pairs.plugins import list_plugins

    used = set(_plugin_distributions(model))
    return {
        info.distribution: info.version
        for info in list_plugins()
        if info.distribution in used or info.builtin
    }


def log_model(
    model: GarchGruModel,
    name: str | None = None,
    conda_env: Any = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: pd.DataFrame | None = None,
    await_registration_for: int | None = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: dict[str, Any] | None = None,
    data_hash: str | None = None,
    **kwargs: Any,
) -> Any:
    """Log ``model`` to the active run (MLflow 3: ``name=``); returns the ``ModelInfo``.

    With ``registered_model_name`` a new version of that registered model is created.
    """
    import sys

    from mlflow.models import Model

    from mlflow_pairs import _mlflow_private as private

    return Model.log(
        artifact_path=None,
        name=name,
        flavor=sys.modules[__name__],
        model=model,
        conda_env=conda_env,
        registered_model_name=registered_model_name,
        signature=signature,
        input_example=input_example,
        await_registration_for=(
            private.DEFAULT_AWAIT_MAX_SLEEP_SECONDS
            if await_registration_for is None
            else await_registration_for
        ),
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        data_hash=data_hash,
        **kwargs,
    )


def load_model(model_uri: str, dst_path: str | None = None) -> GarchGruModel:
    """Load the native :class:`~mlflow_pairs.model.GarchGruModel` from ``model_uri``."""
    from mlflow_pairs import _mlflow_private as private

    local = private._download_artifact_from_uri(artifact_uri=model_uri, output_path=dst_path)
    conf = private._get_flavor_configuration(model_path=local, flavor_name=FLAVOR_NAME)
    return _load_native(Path(local) / conf.get("data", _DATA_SUBPATH))


def _load_native(path: str | Path) -> GarchGruModel:
    """The model in ``path`` with its features and parts resolved from the installed
    plugins (the model code itself never looks at the registry)."""
    import json

    from mlflow_pairs.plugins import get_features, get_model_parts

    document = json.loads((Path(path) / "model.json").read_text("utf-8"))
    names = document.get("features", [])
    wanted = {f"feature:{n}" for n in names}
    wanted |= {f"hedge:{document['hedge']['part']}", f"volatility:{document['garch']['part']}"}
    registered, parts = get_features(), get_model_parts()
    present = {f"feature:{n}" for n in registered}
    present |= {f"{kind}:{n}" for kind, named in parts.items() for n in named}
    missing = sorted(wanted - present)
    if missing:
        sources = _recorded_sources(Path(path))
        needed = sorted({sources[m] for m in missing if m in sources})
        hint = (
            f"pip install {' '.join(needed)}"
            if needed
            else "install the plugin the model was trained with"
        )
        raise NotFoundError(
            f"the model uses {', '.join(m.replace(':', ' ') for m in missing)}, which no "
            f"installed plugin registers: {hint}"
        )
    return GarchGruModel.load(path, [registered[n] for n in names], parts)


def _recorded_sources(data_path: Path) -> dict[str, str]:
    """The ``plugin_sources`` recorded in the MLmodel file above the data folder."""
    import yaml

    mlmodel = data_path.parent / "MLmodel"
    if not mlmodel.is_file():
        return {}
    document = yaml.safe_load(mlmodel.read_text("utf-8")) or {}
    flavor = (document.get("flavors") or {}).get(FLAVOR_NAME) or {}
    return dict(flavor.get("plugin_sources") or {})


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _GarchGruWrapper:
    """Called by ``mlflow.pyfunc.load_model`` with the ``data`` directory."""
    import torch

    from mlflow_pairs import _serving

    # Serving shares few cores with other processes: one intra-op thread by default.
    torch.set_num_threads(int(os.environ.get("MLFLOW_PAIRS_TORCH_THREADS", "1")))
    _serving.watch_dropped_params()
    return _GarchGruWrapper(_load_native(path), max_rows=_max_request_rows(model_config))


def _max_request_rows(model_config: dict[str, Any] | None) -> int | None:
    """The request-size cap: ``$MLFLOW_PAIRS_MAX_REQUEST_ROWS``, else the model config's
    ``max_request_rows``, else :data:`MAX_REQUEST_ROWS`; 0 means no cap."""
    from mlflow.exceptions import MlflowException

    given: Any = os.environ.get(MAX_REQUEST_ROWS_ENV, "").strip()
    source = MAX_REQUEST_ROWS_ENV
    if not given:
        given = (model_config or {}).get("max_request_rows", MAX_REQUEST_ROWS)
        source = "model config max_request_rows"
    try:
        rows = int(str(given).strip())
        if rows < 0:
            raise ValueError
    except ValueError:
        raise MlflowException(
            f"{source} must be a whole number of rows >= 0 (0: no cap), got {given!r}"
        ) from None
    return rows or None


class _GarchGruWrapper:
    """The pyfunc face of the model. Bad input (an :class:`~mlflow_pairs.errors.
    InvalidInputError` or a :class:`~mlflow_pairs.data.DataError`) becomes an
    ``MlflowException`` the scoring server answers with HTTP 400 (413 for too many rows)
    and one line; anything else is the model's own fault: HTTP 500. Stateless per call,
    so safe from several threads."""

    def __init__(self, model: GarchGruModel, max_rows: int | None = MAX_REQUEST_ROWS) -> None:
        self.model = model
        self.max_rows = max_rows

    def get_raw_model(self) -> GarchGruModel:
        return self.model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        import logging

        from mlflow_pairs import _serving
        from mlflow_pairs.data.errors import DataError
        from mlflow_pairs.errors import InvalidInputError, RequestTooLargeError

        try:
            _check_size(model_input, self.max_rows)
            dropped = _serving.dropped_params()
            if dropped:
                raise InvalidInputError(f"unknown param(s) {', '.join(dropped)} ({_known()})")
            prices = _input_prices(model_input)
            rule, all_dates = _rule_from_params(params or {})
            return self.model.predict(prices, rule, all_dates)
        except (InvalidInputError, DataError) as exc:
            status = 413 if isinstance(exc, RequestTooLargeError) else 400
            raise _serving.refusal(str(exc), status) from None
        except Exception as exc:
            logging.getLogger(__name__).exception("garch_gru predict failed")
            raise _serving.internal_error(exc) from exc


def _known() -> str:
    return f"known: {', '.join(sorted(name for name, _, _ in PARAMS))}"


def _check_size(model_input: Any, max_rows: int | None) -> None:
    from mlflow_pairs.errors import RequestTooLargeError

    if max_rows is None:
        return
    rows = len(model_input) if hasattr(model_input, "__len__") else 0
    if rows > max_rows:
        raise RequestTooLargeError(
            f"model input: {rows} rows, more than the {max_rows} this server accepts "
            f"(set {MAX_REQUEST_ROWS_ENV} to change the cap)"
        )


def _input_prices(model_input: Any) -> pd.DataFrame:
    from mlflow_pairs.data.errors import DataError
    from mlflow_pairs.data.files import table_to_wide
    from mlflow_pairs.errors import InvalidInputError

    if not isinstance(model_input, pd.DataFrame):
        try:
            model_input = pd.DataFrame(model_input)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"model input is not a table: {exc}") from None
    if not model_input.columns.is_unique:
        repeated = sorted({str(c) for c in model_input.columns[model_input.columns.duplicated()]})
        raise InvalidInputError(f"model input: column(s) {', '.join(repeated)} appear twice")
    _refuse_booleans(model_input)
    columns = model_input.columns
    if "date" in columns and "symbol" not in columns:
        dates = model_input["date"]
        if pd.api.types.is_datetime64_any_dtype(dates):
            # Wide with parsed dates: the serving hot path (the model picks its symbols).
            return model_input.drop(columns="date").set_axis(pd.DatetimeIndex(dates), axis=0)
    table = model_input.dropna(axis=1, how="all")
    if "date" not in table.columns:
        raise InvalidInputError("model input needs a 'date' column")
    if "symbol" not in table.columns and pd.api.types.is_datetime64_any_dtype(table["date"]):
        return table.set_index("date")
    try:
        return table_to_wide(table, "model input")
    except DataError:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"model input: {exc}") from None


def _refuse_booleans(frame: pd.DataFrame) -> None:
    """true/false is no price: a boolean column, or a boolean among the numbers of one
    (JSON ``[1.5, true]`` arrives as an object column; pandas would read true as 1)."""
    from mlflow_pairs.errors import InvalidInputError

    for column, kind in frame.dtypes.items():
        if column in ("date", "symbol"):
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(kind):
            flags = np.ones(len(values), dtype=bool)
        elif kind == object:  # noqa: E721
            flags = np.fromiter(
                (isinstance(v, (bool, np.bool_)) for v in values), bool, len(values)
            )
        else:
            continue
        if flags.any():
            row = int(flags.argmax())
            where = f" on {frame['date'].iloc[row]}" if "date" in frame.columns else ""
            raise InvalidInputError(
                f"model input: column {column} holds {values.iloc[row]!r}{where}: true/false "
                "is not a price"
            )


def _rule_from_params(params: dict[str, Any]) -> tuple[SignalRule, bool]:
    from mlflow_pairs.errors import InvalidInputError

    known = {name for name, _, _ in PARAMS}
    unknown = sorted(str(name) for name in set(params) - known)
    if unknown:
        raise InvalidInputError(f"unknown param(s) {', '.join(unknown)} ({_known()})")
    values = {name: params.get(name, default) for name, _, default in PARAMS}
    for name, kind, _ in PARAMS:
        value = values[name]
        if kind == "boolean" and not isinstance(value, (bool, np.bool_)):
            raise InvalidInputError(f"param {name} must be a boolean, got {value!r}")
        if kind != "boolean" and (
            isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number))
        ):
            raise InvalidInputError(f"param {name} must be a number, got {value!r}")
    try:
        rule = SignalRule(
            entry_z=float(values["entry_z"]),
            exit_z=float(values["exit_z"]),
            stop_z=float(values["stop_z"]),
            min_probability=float(values["min_probability"]),
            max_holding=int(values["max_holding"]),
        )
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(f"params: {exc}") from None
    return rule, bool(values["all_dates"])
