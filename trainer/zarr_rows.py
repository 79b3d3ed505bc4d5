"""Grow a local Zarr v3 array by one row along its first dim, without zarr's async machinery.

The store's epoch-indexed arrays (chunks of one epoch each) gain one row per epoch. Through
zarr's array API an append of the default digits run cost ~24 ms of CPU (event-loop and
thread-pool hops, metadata re-parsed and validated per call, a temporary file and a rename per
file), which the next training epoch paid for on a 2-core machine. Here each new chunk is
encoded by the array's own codecs (zarr's public synchronous codec protocol,
``zarr.abc.codec.SupportsSyncCodec``) and written, then ``zarr.json`` is rewritten with the
grown ``shape``:

* chunk files of row ``n`` lie outside the array until its ``zarr.json`` says ``n + 1`` rows,
  so they are written in place: an interrupted write leaves bytes no reader looks at, and the
  next append of row ``n`` overwrites them;
* ``zarr.json`` is replaced atomically (temporary file + rename), so a reader or a ``kill -9``
  sees the old or the new shape, never a torn document.

Readers (zarr, xarray) see exactly what zarr's ``resize`` + ``__setitem__`` would have
written (``tests/test_zarr_rows.py`` compares the files byte for byte).
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from pathlib import Path

import numpy as np
import zarr
from zarr.abc.codec import SupportsSyncCodec
from zarr.core.array_spec import ArrayConfig, ArraySpec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.metadata.v3 import ArrayV3Metadata

_PROTOTYPE = default_buffer_prototype()
_CONFIG = ArrayConfig(order="C", write_empty_chunks=True)


def read_doc(array_dir: Path) -> dict:
    """The array's ``zarr.json`` document."""
    return json.loads((array_dir / "zarr.json").read_bytes())


def append_row(array_dir: Path, doc: dict, row: np.ndarray) -> None:
    """Write ``row`` (shape: the array's without its first dim) as row ``doc["shape"][0]``,
    then grow the array by one row. ``doc`` is the array's current ``zarr.json`` document."""
    n, *rest = doc["shape"]
    layout = _layout(str(array_dir), {**doc, "shape": [1, *rest]})
    chunks = layout.meta.chunks
    if chunks[0] != 1 or tuple(rest) != row.shape:
        raise ValueError(
            f"{array_dir}: shape {doc['shape']}, chunks {list(chunks)} cannot take a row of "
            f"shape {row.shape}"
        )
    row = np.asarray(row, dtype=layout.dtype)
    inner = chunks[1:]
    for corner in itertools.product(*(range(0, s, c) for s, c in zip(rest, inner, strict=True))):
        part = row[tuple(slice(o, o + c) for o, c in zip(corner, inner, strict=True))]
        if part.shape == inner:
            chunk = part[None]
        else:  # an edge chunk is stored full size, padded with the fill value
            chunk = np.full(chunks, layout.meta.fill_value, dtype=layout.dtype)
            chunk[(0, *(slice(0, s) for s in part.shape))] = part
        key = layout.meta.encode_chunk_key(
            (n, *(o // c for o, c in zip(corner, inner, strict=True)))
        )
        _write(array_dir / key, layout.encode(chunk))
    doc = {**doc, "shape": [n + 1, *rest]}
    _write_atomic(
        array_dir / "zarr.json", json.dumps(doc, indent=zarr.config.get("json_indent")).encode()
    )


class _Layout:
    """An array's chunk layout and codec chain, parsed once per distinct ``zarr.json``."""

    def __init__(self, doc: dict):
        self.meta = ArrayV3Metadata.from_dict(doc)
        self.dtype = self.meta.dtype.to_native_dtype()
        for codec in self.meta.codecs:
            if not isinstance(codec, SupportsSyncCodec):
                raise TypeError(f"codec {codec} has no synchronous encoder")
        self.spec = ArraySpec(
            shape=self.meta.chunks,
            dtype=self.meta.dtype,
            fill_value=self.meta.fill_value,
            config=_CONFIG,
            prototype=_PROTOTYPE,
        )

    def encode(self, chunk: np.ndarray) -> memoryview:
        data, spec = _PROTOTYPE.nd_buffer.from_numpy_array(np.ascontiguousarray(chunk)), self.spec
        for codec in self.meta.codecs:
            data = codec._encode_sync(data, spec)
            spec = codec.resolve_metadata(spec)
        return data.as_buffer_like()


_LAYOUTS: dict[str, tuple[dict, _Layout]] = {}  # array dir -> (its one-row document, layout)


def _layout(array_dir: str, one_row_doc: dict) -> _Layout:
    """The layout of ``one_row_doc``, reused while the array's document stays the same."""
    cached = _LAYOUTS.get(array_dir)
    if cached is None or cached[0] != one_row_doc:
        if len(_LAYOUTS) >= 256:
            _LAYOUTS.clear()
        cached = _LAYOUTS[array_dir] = (one_row_doc, _Layout(one_row_doc))
    return cached[1]


def _write(path: Path, data) -> None:
    try:
        f = open(path, "wb")
    except FileNotFoundError:  # a new row's chunk folder
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "wb")
    with f:
        f.write(data)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
