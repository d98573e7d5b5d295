"""``tj.__array_namespace_info__()``: the array API standard's inspection object (2024.12).

tracejit runs on jax's default device, with jax's dtypes: the 64-bit ones only when jax's x64
mode is on (``JAX_ENABLE_X64=1``), as jax itself reports.

>>> import tracejit as tj
>>> info = tj.__array_namespace_info__()
>>> info.default_dtypes()["real floating"]
dtype('float32')
>>> info.capabilities()["boolean indexing"]
False
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

_KINDS: dict[str, tuple[str, ...]] = {
    "bool": ("bool",),
    "signed integer": ("int8", "int16", "int32", "int64"),
    "unsigned integer": ("uint8", "uint16", "uint32", "uint64"),
    "real floating": ("float32", "float64"),
    "complex floating": ("complex64", "complex128"),
}
_KINDS["integral"] = _KINDS["signed integer"] + _KINDS["unsigned integer"]
_KINDS["numeric"] = _KINDS["integral"] + _KINDS["real floating"] + _KINDS["complex floating"]


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)


class Info:
    """What this namespace supports (the standard's ``__array_namespace_info__`` object)."""

    __module__ = "tracejit"

    def capabilities(self) -> dict[str, Any]:
        """Boolean-mask indexing is refused (a result's shape would depend on the mask's
        values); data-dependent shapes (``nonzero``, ``unique_*``) work eagerly, and inside
        ``tj.function`` with ``size=``; XLA allows up to 64 dims."""
        return {"boolean indexing": False, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self) -> Any:
        return jax.devices()[0]

    def devices(self) -> list[Any]:
        """The one device tracejit places tensors on (``tj.distribute`` spreads work over the
        others)."""
        return [jax.devices()[0]]

    def default_dtypes(self, *, device: Any = None) -> dict[str, Any]:
        self._check_device(device)
        wide = _x64()
        return {
            "real floating": np.dtype("float64" if wide else "float32"),
            "complex floating": np.dtype("complex128" if wide else "complex64"),
            "integral": np.dtype("int64" if wide else "int32"),
            "indexing": np.dtype("int64" if wide else "int32"),
        }

    def dtypes(self, *, device: Any = None, kind: str | tuple[str, ...] | None = None) -> dict:
        """The supported dtypes of ``kind`` (a kind name, a tuple of them, or None for all),
        by name."""
        self._check_device(device)
        kinds = ("bool", "numeric") if kind is None else (kind,) if isinstance(kind, str) else kind
        names: list[str] = []
        for k in kinds:
            if k not in _KINDS:
                raise ValueError(f"dtypes(kind={k!r}): kind must be one of {', '.join(_KINDS)}")
            names += [n for n in _KINDS[k] if n not in names]
        if not _x64():
            names = [n for n in names if n not in ("int64", "uint64", "float64", "complex128")]
        return {name: np.dtype(name) for name in names}

    def _check_device(self, device: Any) -> None:
        if device is not None and device != jax.devices()[0]:
            raise ValueError(f"device={device!r}: tracejit uses {jax.devices()[0]}")

    def __repr__(self) -> str:
        return "tracejit.__array_namespace_info__()"


def __array_namespace_info__() -> Info:  # noqa: N807 - the standard's name
    """The array API inspection object for tracejit."""
    return Info()
