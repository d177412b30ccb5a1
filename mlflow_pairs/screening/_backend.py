"""Array backends of the screening kernel: NumPy on the CPU, PyTorch on a CPU or a GPU.

The kernel (:mod:`._kernel`) is written once against the small surface both backends
share (arithmetic, indexing, ``where``, ``log``, ``sqrt``, ``einsum``...); what differs
(creating arrays on a device, the matrix products, the normal CDF, counting mean
crossings) lives here. Both compute in float64, so their results agree to rounding.

PyTorch is imported only when a torch backend is asked for, so the NumPy engine starts
without it.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np

from mlflow_pairs.errors import MlflowPairsError

__all__ = [
    "DEVICES",
    "Backend",
    "DeviceUnavailableError",
    "NumpyBackend",
    "TorchBackend",
    "get_backend",
    "gpu_available",
    "resolve_device",
]

#: Values of ``screening.device`` / ``--device``.
DEVICES = ("auto", "numpy", "cpu", "cuda")

# Spreads held at once when counting crossings: (pairs, days) per slice.
_NUMPY_CROSSING_ROWS = 64
_TORCH_CROSSING_ELEMENTS = {"cpu": 2**22, "cuda": 2**26}


_erfc = np.frompyfunc(math.erfc, 1, 1)


class DeviceUnavailableError(MlflowPairsError, ValueError):
    """The requested screening device cannot be used here (e.g. ``cuda`` without a GPU)."""

    exit_code = 2


class Backend:
    """What the kernel needs beyond the shared array API. ``xp`` is the array module."""

    name: str
    xp: Any
    #: ``cpu`` or ``cuda``: what kind of memory the arrays live in.
    device_type: str = "cpu"

    def asarray(self, values: Any) -> Any:
        """float64 array on this backend's device."""
        raise NotImplementedError

    def index(self, values: Any) -> Any:
        """Integer index array on this backend's device."""
        raise NotImplementedError

    def full(self, shape: int | tuple[int, ...], value: float) -> Any:
        raise NotImplementedError

    def eye(self, n: int) -> Any:
        raise NotImplementedError

    def concat(self, arrays: list[Any], axis: int) -> Any:
        raise NotImplementedError

    def to_numpy(self, array: Any) -> np.ndarray:
        raise NotImplementedError

    def ndtr(self, values: Any) -> Any:
        """Standard normal CDF."""
        raise NotImplementedError

    def cross(self, a: Any, b: Any | None = None) -> Any:
        """``a.T @ b``; ``a.T @ a`` (symmetric, cheaper) when ``b`` is None."""
        raise NotImplementedError

    def sign_changes(self, rows: Any, y: Any, x: Any, gamma: Any) -> Any:
        """How often ``rows[y] - gamma * rows[x]`` changes sign, per pair.

        ``rows`` is (n_symbols, n_observations), one centred log-price path per row, so
        each spread's mean is zero and its sign changes are its mean crossings.
        """
        raise NotImplementedError


class NumpyBackend(Backend):
    """NumPy in float64; crossings counted on small slices of pairs that stay in cache."""

    name = "numpy"
    xp = np

    def asarray(self, values: Any) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def index(self, values: Any) -> np.ndarray:
        return np.asarray(values, dtype=np.intp)

    def full(self, shape: int | tuple[int, ...], value: float) -> np.ndarray:
        return np.full(shape, value, dtype=np.float64)

    def eye(self, n: int) -> np.ndarray:
        return np.eye(n)

    def concat(self, arrays: list[Any], axis: int) -> np.ndarray:
        return np.concatenate(arrays, axis=axis)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def ndtr(self, values: Any) -> np.ndarray:
        # Phi(x) = erfc(-x / sqrt 2) / 2 through the C library, element by element:
        # fast enough for the p-values, and it spares the screen importing scipy.special.
        values = np.asarray(values, dtype=np.float64)
        return cast(np.ndarray, 0.5 * _erfc(-values / math.sqrt(2)).astype(np.float64))

    def cross(self, a: Any, b: Any | None = None) -> np.ndarray:
        # a.T @ a is recognised by NumPy and computed by BLAS syrk (half the work).
        return cast(np.ndarray, a.T @ a if b is None else a.T @ b)

    def sign_changes(self, rows: Any, y: Any, x: Any, gamma: Any) -> np.ndarray:
        # Pairs sharing a y row are compared against that one row, a few at a time so
        # the slices stay in cache; consecutive x rows are read in place, not copied.
        # The sides are packed into bits, whose changes are counted word by word.
        n_obs = rows.shape[1]
        padded = -(-n_obs // 64) * 64
        size = _NUMPY_CROSSING_ROWS
        scaled = np.empty((size, n_obs))
        above = np.empty((size, padded), dtype=bool)
        out = np.empty(len(y), dtype=np.int64)
        order = np.argsort(y, kind="stable")
        bounds = np.flatnonzero(np.diff(y[order])) + 1
        for group in np.split(order, bounds) if len(order) else []:
            path = rows[y[group[0]]]
            xs, gs = x[group], gamma[group][:, None]
            contiguous = bool(np.all(np.diff(xs) == 1))
            counts = np.empty(len(group), dtype=np.int64)
            for start in range(0, len(group), size):
                k = min(size, len(group) - start)
                s, up = scaled[:k], above[:k]
                if contiguous:
                    np.multiply(rows[xs[start] : xs[start] + k], gs[start : start + k], out=s)
                else:
                    np.take(rows, xs[start : start + k], axis=0, out=s)
                    s *= gs[start : start + k]
                np.greater(path, s, out=up[:, :n_obs])
                up[:, n_obs:] = up[:, n_obs - 1 : n_obs]  # padding repeats the last side
                counts[start : start + k] = _side_changes(up)
            out[group] = counts
        return out


_LOW_63 = np.uint64(2**63 - 1)
_ONE, _TOP = np.uint64(1), np.uint64(63)
_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def _side_changes(up: np.ndarray) -> np.ndarray:
    """Changes between consecutive columns of ``up`` (k, 64 * W) bool, per row."""
    words = np.packbits(up, axis=1, bitorder="little").view(np.uint64)  # bit t = column t
    within = (words ^ (words >> _ONE)) & _LOW_63  # bit t: column t differs from t + 1
    if hasattr(np, "bitwise_count"):  # NumPy >= 2
        counts = np.bitwise_count(within).sum(axis=1, dtype=np.int64)
    else:
        counts = _BYTE_BITS[within.view(np.uint8)].sum(axis=1)
    across = (words[:, :-1] >> _TOP) ^ (words[:, 1:] & _ONE)  # last bit of a word vs next
    return cast(np.ndarray, counts + across.sum(axis=1, dtype=np.int64))


class TorchBackend(Backend):
    """PyTorch in float64 on ``device`` (``cpu`` or ``cuda[:N]``)."""

    name = "torch"

    def __init__(self, device: str) -> None:
        import torch

        self.xp = torch
        self.device = torch.device(device)
        self.device_type = self.device.type
        self._crossing_elements = _TORCH_CROSSING_ELEMENTS.get(self.device.type, 2**24)

    def asarray(self, values: Any) -> Any:
        return self.xp.as_tensor(values, dtype=self.xp.float64, device=self.device)

    def index(self, values: Any) -> Any:
        return self.xp.as_tensor(values, dtype=self.xp.int64, device=self.device)

    def full(self, shape: int | tuple[int, ...], value: float) -> Any:
        size = (shape,) if isinstance(shape, int) else shape
        return self.xp.full(size, value, dtype=self.xp.float64, device=self.device)

    def eye(self, n: int) -> Any:
        return self.xp.eye(n, dtype=self.xp.float64, device=self.device)

    def concat(self, arrays: list[Any], axis: int) -> Any:
        return self.xp.cat(arrays, dim=axis)

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, np.ndarray):
            return array
        return cast(np.ndarray, array.detach().cpu().numpy())

    def ndtr(self, values: Any) -> Any:
        return self.xp.special.ndtr(values)

    def cross(self, a: Any, b: Any | None = None) -> Any:
        return a.T @ (a if b is None else b)

    def sign_changes(self, rows: Any, y: Any, x: Any, gamma: Any) -> Any:
        if self.device_type == "cpu":
            # On a CPU NumPy's cache-sized slices are several times faster than large
            # tensor temporaries; CPU tensors are NumPy arrays without a copy.
            counts = NumpyBackend().sign_changes(*(t.numpy() for t in (rows, y, x, gamma)))
            return self.xp.from_numpy(counts)
        return self.sign_changes_in_torch(rows, y, x, gamma)

    def sign_changes_in_torch(self, rows: Any, y: Any, x: Any, gamma: Any) -> Any:
        """:meth:`sign_changes` in tensor operations, on large slices (the GPU's way)."""
        torch = self.xp
        n_pairs, n_obs = len(y), rows.shape[1]
        size = max(1, self._crossing_elements // n_obs)
        parts = []
        for start in range(0, n_pairs, size):
            stop = min(start + size, n_pairs)
            # The same comparison as NumPy's, so the counts agree exactly.
            up = rows[y[start:stop]] > gamma[start:stop, None] * rows[x[start:stop]]
            parts.append((up[:, 1:] != up[:, :-1]).sum(dim=1))
        if not parts:
            return torch.zeros(0, dtype=torch.int64, device=self.device)
        return torch.cat(parts)


def gpu_available() -> bool:
    """Whether torch can use a CUDA (or ROCm) GPU here.

    Answers without importing torch where no GPU driver is present, so ``auto`` costs
    nothing on a machine without a GPU.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    if not _gpu_driver_present():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _gpu_driver_present() -> bool:
    if sys.platform == "win32":
        system = Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32"
        return (system / "nvcuda.dll").exists()
    if sys.platform == "darwin":
        return False  # no CUDA on macOS
    dev = Path("/dev")
    return any(dev.glob("nvidia[0-9]*")) or (dev / "kfd").exists()


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` where a GPU is available, else ``numpy``; ``cuda``
    without one is a :class:`DeviceUnavailableError`."""
    if device == "auto":
        return "cuda" if gpu_available() else "numpy"
    if device == "numpy" or device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not gpu_available():
            raise DeviceUnavailableError(
                f"screening device {device!r} was requested but no CUDA GPU is available "
                "(use --device numpy, cpu or auto)"
            )
        return device
    raise DeviceUnavailableError(
        f"unknown screening device {device!r}; use one of {', '.join(DEVICES)}"
    )


def get_backend(device: str) -> Backend:
    """The backend for ``device`` (see :func:`resolve_device`): ``numpy`` is the NumPy
    engine, ``cpu`` and ``cuda[:N]`` are PyTorch on that device."""
    resolved = resolve_device(device)
    if resolved == "numpy":
        return NumpyBackend()
    try:
        return TorchBackend(resolved)
    except ImportError:  # torch is a dependency, but a broken install says so plainly
        raise DeviceUnavailableError(
            f"screening device {device!r} needs PyTorch, which cannot be imported"
        ) from None
