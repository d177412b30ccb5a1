"""MLflow's private helpers that the flavor needs, imported in one place.

MLflow's own flavors (``mlflow.prophet`` and others) use these to save models; there is
no public equivalent. An MLflow upgrade that moves them breaks this module only.
"""

from __future__ import annotations

from mlflow.models.utils import _save_example
from mlflow.tracking._model_registry import DEFAULT_AWAIT_MAX_SLEEP_SECONDS
from mlflow.tracking.artifact_utils import _download_artifact_from_uri
from mlflow.utils.environment import (
    _CONDA_ENV_FILE_NAME,
    _CONSTRAINTS_FILE_NAME,
    _PYTHON_ENV_FILE_NAME,
    _REQUIREMENTS_FILE_NAME,
    _mlflow_conda_env,
    _process_conda_env,
    _process_pip_requirements,
    _PythonEnv,
    _validate_env_arguments,
)
from mlflow.utils.file_utils import write_to
from mlflow.utils.model_utils import (
    _get_flavor_configuration,
    _validate_and_prepare_target_save_path,
)

__all__ = [
    "DEFAULT_AWAIT_MAX_SLEEP_SECONDS",
    "_CONDA_ENV_FILE_NAME",
    "_CONSTRAINTS_FILE_NAME",
    "_PYTHON_ENV_FILE_NAME",
    "_REQUIREMENTS_FILE_NAME",
    "_PythonEnv",
    "_download_artifact_from_uri",
    "_get_flavor_configuration",
    "_mlflow_conda_env",
    "_process_conda_env",
    "_process_pip_requirements",
    "_save_example",
    "_validate_and_prepare_target_save_path",
    "_validate_env_arguments",
    "write_to",
]
