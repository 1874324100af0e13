"""libxgboost through its C API, without importing the `xgboost` Python package.

Why: the Python package imports scipy at start-up (about 140 MB more in the image) and spends ~90 µs of Python
per `inplace_predict` call. The C API (`XGBoosterPredictFromDense`, the call behind `inplace_predict`) takes a
dense float32 matrix described by a NumPy-style array interface, so a ctypes buffer is enough.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

_c_ulong_p = ctypes.POINTER(ctypes.c_uint64)
_PREDICT_CONFIG = json.dumps(
    {
        "type": 0,
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,
        "strict_shape": False,
        "cache_id": 0,
        "missing": float("nan"),
    }
).encode()


class XGBoostError(RuntimeError):
    """libxgboost refused a call; the message is its own."""


def library_path() -> Path:
    """libxgboost.so as installed by the xgboost(-cpu) wheel; `XGBOOST_LIBRARY` overrides it."""
    override = os.environ.get("XGBOOST_LIBRARY")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("xgboost")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise XGBoostError("the xgboost-cpu package is not installed")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "lib" / "libxgboost.so"
        if candidate.exists():
            return candidate
    raise XGBoostError(f"no lib/libxgboost.so under {list(spec.submodule_search_locations)}")


def _load_library() -> ctypes.CDLL:
    lib = ctypes.cdll.LoadLibrary(str(library_path()))
    lib.XGBGetLastError.restype = ctypes.c_char_p
    return lib


_LIB: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        _LIB = _load_library()
    return _LIB


def _check(ret: int) -> None:
    if ret != 0:
        message = _lib().XGBGetLastError()
        text = message.decode(errors="replace") if message else "unknown libxgboost error"
        raise XGBoostError(text.split("\nStack trace:", 1)[0].strip())  # its own words, not its C++ frames


class Booster:
    """A loaded model. `predict` is thread-safe; the result buffer belongs to the booster until the next call."""

    def __init__(self, model: bytes) -> None:
        """`model`: a model file's bytes (JSON or UBJ): loaded from memory, so what was checked is what is loaded."""
        lib = _lib()
        self._handle = ctypes.c_void_p()
        _check(lib.XGBoosterCreate(None, ctypes.c_uint64(0), ctypes.byref(self._handle)))
        _check(lib.XGBoosterLoadModelFromBuffer(self._handle, model, ctypes.c_uint64(len(model))))
        # One thread: per-message batches are tiny, and an OpenMP pool only adds wake-up latency.
        _check(lib.XGBoosterSetParam(self._handle, b"nthread", b"1"))
        self._lock = threading.Lock()
        self.num_features = self._num_features()
        self.feature_names = self._feature_names()

    def saved_json(self) -> bytes:
        """The model as libxgboost holds it, in its JSON format whatever file format it was loaded from."""
        length = ctypes.c_uint64()
        data = ctypes.POINTER(ctypes.c_char)()
        _check(
            _lib().XGBoosterSaveModelToBuffer(
                self._handle, b'{"format": "json"}', ctypes.byref(length), ctypes.byref(data)
            )
        )
        return ctypes.string_at(data, length.value)

    def _num_features(self) -> int:
        out = ctypes.c_uint64()
        _check(_lib().XGBoosterGetNumFeature(self._handle, ctypes.byref(out)))
        return int(out.value)

    def _feature_names(self) -> list[str]:
        length = ctypes.c_uint64()
        names = ctypes.POINTER(ctypes.c_char_p)()
        _check(
            _lib().XGBoosterGetStrFeatureInfo(self._handle, b"feature_name", ctypes.byref(length), ctypes.byref(names))
        )
        return [names[i].decode() for i in range(length.value)]

    def predict(self, rows: Sequence[Sequence[float]]) -> list[float | list[float]]:
        """Predictions for dense rows of `num_features` floats: one float a row, or a list for multi-output."""
        n_rows, n_cols = len(rows), self.num_features
        buffer = (ctypes.c_float * (n_rows * n_cols))(*[value for row in rows for value in row])
        interface = (
            f'{{"data": [{ctypes.addressof(buffer)}, false], "shape": [{n_rows}, {n_cols}], '
            f'"typestr": "<f4", "version": 3}}'
        ).encode()
        shape = _c_ulong_p()
        dims = ctypes.c_uint64()
        result = ctypes.POINTER(ctypes.c_float)()
        with self._lock:
            _check(
                _lib().XGBoosterPredictFromDense(
                    self._handle,
                    interface,
                    _PREDICT_CONFIG,
                    None,
                    ctypes.byref(shape),
                    ctypes.byref(dims),
                    ctypes.byref(result),
                )
            )
            sizes = [int(shape[i]) for i in range(dims.value)]
            total = 1
            for size in sizes:
                total *= size
            flat = result[:total]
        if len(sizes) <= 1 or total == n_rows:
            return flat
        width = total // n_rows
        return [flat[i * width : (i + 1) * width] for i in range(n_rows)]

    def __del__(self) -> None:
        if getattr(self, "_handle", None) and _LIB is not None:
            _LIB.XGBoosterFree(self._handle)
