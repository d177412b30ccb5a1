"""Wheels bundled into a saved model, so an isolated environment can install it.

No public index has ``mlflow-pairs`` or its sector plugins, so a model whose
``requirements.txt`` pinned them could not be restored with ``--env-manager uv`` (or
``virtualenv``, ``spark_udf(env_manager=...)``, a Docker build). :func:`bundle` puts a
wheel of each such distribution in the model's ``wheels/`` folder and returns the lines
that replace their pins in the requirements: ``wheels/<file>.whl``, relative to the model
directory, as ``mlflow.models.add_libraries_to_model`` writes them. MLflow restores an
environment with the model's files linked into the working directory of ``pip install -r``
(``uv pip install -r``), and both resolve such a path against that directory.

Wheels are built without network and without needing a checkout:

* an editable install (``direct_url.json`` says ``editable``) is built from its source
  folder with ``pip wheel --no-deps --no-build-isolation --no-index``, on a copy of the
  folder (an in-tree setuptools build leaves stale files in ``build/`` that would end up
  in the wheel, and two processes would share it);
* any other install is packed again from the files its ``RECORD`` lists.

Each wheel's name carries a build tag derived from its contents (``1<hash>``): MLflow reuses
a restored environment whose requirement lines are unchanged, so a model built from
changed code at the same version must not name the same file. Built wheels are cached per
process, keyed by what they are built from (file sizes and modification times, or the
``RECORD``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from email.parser import Parser
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mlflow_pairs.errors import MlflowPairsError

__all__ = [
    "WHEELS_DIR",
    "WheelBuildError",
    "bundle",
    "replace_requirements",
    "requirement_name",
    "wheel_for",
]

#: The model sub-folder of bundled wheels (``mlflow.models.wheeled_model``'s name).
WHEELS_DIR = "wheels"

# Folders never copied into a build: version control, environments, caches, outputs.
_SKIP_ANYWHERE = {
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tox",
    ".nox",
    "node_modules",
    "mlruns",
}
# Build outputs, skipped beside a project file only (a package may have a ``build`` module).
_SKIP_BESIDE_PROJECT = {"build", "dist"}
_PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
_PIP_TIMEOUT_S = 300

_lock = threading.Lock()
_cache: dict[tuple[str, ...], Path] = {}
_cache_dir: tempfile.TemporaryDirectory[str] | None = None


class WheelBuildError(MlflowPairsError):
    """A distribution the model needs could not be packed as a wheel."""

    exit_code = 2


def bundle(distributions: Iterable[str], model_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Put a wheel of each distribution in ``model_dir/wheels``; return
    ``{canonical name: "wheels/<file>.whl"}`` (the requirement line for it)."""
    names = list(dict.fromkeys(canonicalize_name(n) for n in distributions))
    if not names:
        return {}
    target = Path(model_dir) / WHEELS_DIR
    target.mkdir(parents=True, exist_ok=True)
    lines: dict[str, str] = {}
    for name in names:
        wheel = wheel_for(name)
        shutil.copyfile(wheel, target / wheel.name)
        lines[name] = f"{WHEELS_DIR}/{wheel.name}"
    return lines


def replace_requirements(requirements: Iterable[str], bundled: dict[str, str]) -> list[str]:
    """``requirements`` with each line naming a bundled distribution replaced by its wheel
    line (in place, once); other lines (options, paths, URLs) are kept as they are."""
    out: list[str] = []
    for line in requirements:
        name = requirement_name(line)
        replacement = bundled.get(name) if name else None
        entry = replacement or line
        if entry not in out:
            out.append(entry)
    return out


def requirement_name(line: str) -> str | None:
    """The canonical distribution name a requirement line names, or ``None`` for an option,
    a path or anything else that is not a plain requirement."""
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith(("-", "#")):
        return None
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def wheel_for(name: str) -> Path:
    """A wheel of the installed distribution ``name`` (built once per process for the same
    sources); raises :class:`WheelBuildError` with the reason."""
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        raise WheelBuildError(
            f"cannot bundle {name} with the model: it is not installed in this environment"
        ) from None
    source = _editable_source(dist) or _source_tree(dist)
    build: Callable[[Path], Path]
    if source is not None:
        key = ("source", str(source), _tree_fingerprint(source))
        build = lambda out: _build_from_source(dist, source, out)  # noqa: E731
    else:
        record = dist.read_text("RECORD")
        if record is None:
            raise WheelBuildError(
                f"cannot bundle {dist.metadata['Name']} with the model: its installation has "
                "no RECORD file (installed with a legacy installer); reinstall it with pip"
            )
        key = ("record", str(dist.locate_file("")), hashlib.sha256(record.encode()).hexdigest())
        build = lambda out: _pack_installed(dist, out)  # noqa: E731
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached.is_file():
            return cached
        out = Path(tempfile.mkdtemp(dir=_process_cache_dir()))
        wheel = _with_content_tag(build(out))
        _cache[key] = wheel
        return wheel


def _process_cache_dir() -> str:
    global _cache_dir
    if _cache_dir is None:
        _cache_dir = tempfile.TemporaryDirectory(prefix="mlflow-pairs-wheels-")
    return _cache_dir.name


def _editable_source(dist: Distribution) -> Path | None:
    """The source folder of an editable install (from ``direct_url.json``), else None."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not (info.get("dir_info") or {}).get("editable"):
        return None
    url = urlparse(info.get("url", ""))
    if url.scheme != "file":
        return None
    source = Path(url2pathname(unquote(url.path)))
    if not any((source / f).is_file() for f in _PROJECT_FILES):
        raise WheelBuildError(
            f"cannot bundle {dist.metadata['Name']} with the model: it is installed in "
            f"editable mode from {source}, which no longer holds a project"
        )
    return source


def _source_tree(dist: Distribution) -> Path | None:
    """The project folder of metadata found in a source tree on ``sys.path`` (the
    ``<name>.egg-info`` a setuptools build leaves beside ``pyproject.toml``, seen first when
    Python runs from the checkout), else None."""
    if dist.read_text("RECORD") is not None or dist.read_text("PKG-INFO") is None:
        return None
    folder = Path(str(dist.locate_file("")))
    return folder if any((folder / f).is_file() for f in _PROJECT_FILES) else None


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """``(relative path, kind)`` for what a build copy holds; kind is dir, file or link."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        is_project = any((here / f).is_file() for f in _PROJECT_FILES)
        keep = []
        for d in sorted(dirs):
            if d in _SKIP_ANYWHERE or d.endswith(".egg-info"):
                continue
            if is_project and d in _SKIP_BESIDE_PROJECT:
                continue
            path = here / d
            if path.is_symlink():
                yield path.relative_to(root), "link"
            else:
                keep.append(d)
                yield path.relative_to(root), "dir"
        dirs[:] = keep
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            path = here / f
            yield path.relative_to(root), "link" if path.is_symlink() else "file"


def _tree_fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for rel, kind in _walk(root):
        path = root / rel
        try:
            stat = path.stat()  # a link: its target's
        except OSError:
            stat = None
        digest.update(f"{rel}\0{kind}\0".encode())
        if kind == "link":
            digest.update(os.readlink(path).encode())
        if stat is not None and kind != "dir":
            digest.update(f"\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _build_from_source(dist: Distribution, source: Path, out: Path) -> Path:
    """``pip wheel`` on a copy of ``source`` (links kept as links, so relative links to
    files elsewhere in the project still resolve)."""
    copy = out / "src"
    copy.mkdir()
    for rel, kind in _walk(source):
        src, dst = source / rel, copy / rel
        if kind == "dir":
            dst.mkdir()
        elif kind == "link":
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    wheels = out / "wheels"
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "--quiet",
        "--wheel-dir",
        str(wheels),
        str(copy),
    ]
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=_PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WheelBuildError(
            f"cannot build a wheel of {dist.metadata['Name']} from {source}: {exc}"
        ) from None
    built = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if result.returncode != 0 or len(built) != 1:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise WheelBuildError(
            f"cannot build a wheel of {dist.metadata['Name']} from {source} "
            f"(pip wheel --no-build-isolation needs the build backend installed here): "
            + " | ".join(detail)
        )
    return built[0]


def _pack_installed(dist: Distribution, out: Path) -> Path:
    """A wheel of the files an installed distribution's ``RECORD`` lists (scripts and other
    files outside site-packages are left out; installers recreate scripts from
    ``entry_points.txt``)."""
    name = dist.metadata["Name"]
    root = Path(str(dist.locate_file(""))).resolve()
    info_dir = None
    members: list[tuple[str, Path]] = []
    for packaged in dist.files or []:
        rel = packaged.as_posix()
        if rel.startswith("../") or "/__pycache__/" in f"/{rel}" or rel.endswith(".pyc"):
            continue
        top = rel.split("/", 1)[0]
        if top.endswith(".dist-info"):
            info_dir = top
            if rel.split("/", 1)[-1] in {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}:
                continue
        path = root / rel
        if not path.is_file():
            raise WheelBuildError(f"cannot bundle {name} with the model: {path} is missing")
        members.append((rel, path))
    if info_dir is None:
        raise WheelBuildError(f"cannot bundle {name} with the model: no .dist-info in RECORD")
    wheel_file = root / info_dir / "WHEEL"
    # Its tags say which platforms the files fit: no guess for someone else's build.
    tags = (
        Parser().parsestr(wheel_file.read_text("utf-8")).get_all("Tag")
        if wheel_file.is_file()
        else None
    )
    if not tags:
        raise WheelBuildError(
            f"cannot bundle {name} with the model: its installation has no WHEEL file with "
            f"tags ({wheel_file}); reinstall it with pip"
        )
    parts = [t.split("-") for t in tags]
    tag = "-".join(".".join(dict.fromkeys(p[i] for p in parts)) for i in range(3))
    version = dist.version
    filename = f"{_wheel_name(name)}-{version}-{tag}.whl"
    wheel = out / filename
    record_rows = []
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel, path in sorted(members):
            data = path.read_bytes()
            archive.writestr(rel, data)
            record_rows.append((rel, _record_hash(data), str(len(data))))
        record_name = f"{info_dir}/RECORD"
        record_rows.append((record_name, "", ""))
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(record_rows)
        archive.writestr(record_name, buffer.getvalue())
    return wheel


def _with_content_tag(wheel: Path) -> Path:
    """``wheel`` renamed to carry a build tag from its contents (the hashes in RECORD)."""
    with zipfile.ZipFile(wheel) as archive:
        record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        rows = sorted(
            row[0] + "," + row[1]
            for row in csv.reader(io.StringIO(archive.read(record).decode()))
            if row and row[0] != record
        )
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:12]
    parts = wheel.name[: -len(".whl")].split("-")
    # name-version[-build]-python-abi-platform
    head, tail = parts[:2], parts[-3:]
    tagged = wheel.with_name("-".join([*head, f"1{digest}", *tail]) + ".whl")
    wheel.rename(tagged)
    return tagged


def _wheel_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"
