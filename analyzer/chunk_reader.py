"""Read one epoch's unit range of a stored activation array into a reused per-thread buffer.

Every read, whatever wrote the store, fills the calling thread's ``out`` buffer (sample,
units) one stored chunk at a time, so a read holds the output plus one decoded chunk, never
the epoch or the run; memory is bounded by the largest segment plus one stored chunk per
worker, independent of the epoch count, the codecs and the chunking.

* Fast path (:mod:`analyzer.chunk_layout`: a local Zarr v3 array with any regular chunk grid,
  little-endian float16/32/64, Blosc, Zstd, GZip or no compressor, an optional ``crc32c``
  checksum, verified here as zarr does): each chunk file is decoded by numcodecs straight
  into a per-thread scratch chunk and copied (float16 widened to float32) into ``out``. This
  covers the trainer's layout and ``xr.Dataset.to_zarr``'s default (bytes + zstd).
* General path (anything else ``xr.open_zarr`` opens: sharding, other codecs, Zarr v2, a
  remote store): zarr's array API reads one stored unit chunk's width at a time into ``out``.

Through zarr's array API a whole-range read allocates its output and one decode buffer per
chunk at once (at VGG-16 width ~150 MB per epoch): 2.7x the page faults of the fast path.
A chunk spanning several epochs is decoded once per epoch that reads it (its decode cost is
repeated; its memory is one chunk). Values are identical on every path
(``tests/test_chunk_reader.py``, ``tests/test_foreign_stores.py``).

The returned array is a view of the calling thread's buffer: valid until that thread's next
:meth:`UnitReader.read`; nothing derived from it may keep a view (the epoch pass keeps only
computed arrays). The buffers (one output and one chunk per worker thread) live until
:func:`release_buffers`, which :func:`analyzer.mi_tensors.analyze` calls when it ends.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import zarr

from analyzer.activations import StoreError, corrupt_chunk_message
from analyzer.chunk_layout import (  # noqa: F401  (FastLayout, parse_fast_layout: public here)
    FastLayout,
    codec_of,
    decode_chunk,
    parse_fast_layout,
)
from latent_mi import contract as C

_buffers: dict[int, dict[str, np.ndarray]] = {}  # thread id -> name -> 1-D buffer, grown on demand


def _buffer(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A (shape, dtype) view of this thread's reusable buffer ``name`` (contents undefined)."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    mine = _buffers.setdefault(threading.get_ident(), {})
    buf = mine.get(name)
    if buf is None or buf.size < n:
        mine.pop(name, None)  # the old one is freed before the larger one is allocated
        buf = mine[name] = np.empty(n, dtype=np.uint8)
    return buf[:n].view(dtype).reshape(shape)


def release_buffers() -> None:
    """Drop every thread's buffers (the analyzer calls it when an analysis ends; a read in
    progress keeps its own reference)."""
    _buffers.clear()


def _out_dtype(dtype: np.dtype) -> np.dtype:
    """float32 and float64 are returned as stored; anything else as float32."""
    return np.dtype(dtype) if dtype in (np.float32, np.float64) else np.dtype(np.float32)


class UnitReader:
    """(sample, unit) values of one epoch and unit range of ``{store}/activation``."""

    def __init__(self, store: str):
        self.store = store
        self.dir = Path(store) / C.ACTIVATION
        self.array = None  # zarr's array: the general path (any other layout)
        self.meta = self._fast_layout()
        if self.meta is None:
            self.array = zarr.open_array(str(self.dir), mode="r")
            self.unit_width = int((self.array.shards or self.array.chunks)[2])
            self.out_dtype = _out_dtype(self.array.dtype)
        else:
            self.unit_width = self.meta.chunks[2]
            self.out_dtype = _out_dtype(self.meta.dtype)
            self.codec = codec_of(self.meta)

    def _fast_layout(self) -> FastLayout | None:
        """The array's layout when this reader decodes its chunks itself, else None."""
        try:
            return parse_fast_layout(json.loads((self.dir / "zarr.json").read_bytes()))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError):
            return None  # not a local Zarr v3 array: zarr reads it (or names the problem)

    def read(self, epoch: int, start: int, stop: int) -> np.ndarray:
        """Values (sample, stop - start) of epoch index ``epoch``, float32 (float16 and other
        stored types widened) or float64: a view of this thread's buffer, valid until its
        next read."""
        try:
            if self.meta is None:
                return self._read_zarr(epoch, start, stop)
            return self._read_chunks(epoch, start, stop)
        except Exception as e:  # a corrupt chunk: name the store, epoch and variable
            raise StoreError(
                corrupt_chunk_message(self.store)
                or f"{self.store}: epoch index {epoch}, units {start}-{stop}: cannot read the "
                f"activation chunk: {type(e).__name__}: {e}"
            ) from None

    def _pieces(self, start: int, stop: int):
        """(chunk column j, lo, hi): the stored unit chunks covering [start, stop)."""
        width = self.unit_width
        for j in range(start // width, (stop - 1) // width + 1):
            yield j, max(start, j * width), min(stop, (j + 1) * width)

    def _read_zarr(self, epoch: int, start: int, stop: int) -> np.ndarray:
        n_epochs, n, n_units = self.array.shape
        if not (0 <= epoch < n_epochs and 0 <= start < stop <= n_units):
            raise IndexError(
                f"epoch {epoch}, units {start}-{stop} outside shape {self.array.shape}"
            )
        out = _buffer("out", (n, stop - start), self.out_dtype)
        for _, lo, hi in self._pieces(start, stop):
            out[:, lo - start : hi - start] = self.array[epoch, :, lo:hi]
        return out

    def _read_chunks(self, epoch: int, start: int, stop: int) -> np.ndarray:
        meta = self.meta
        n_epochs, n, n_units = meta.shape
        if not (0 <= epoch < n_epochs and 0 <= start < stop <= n_units):
            raise IndexError(f"epoch {epoch}, units {start}-{stop} outside shape {meta.shape}")
        ce, cs, cu = meta.chunks
        out = _buffer("out", (n, stop - start), self.out_dtype)
        chunk = _buffer("chunk", meta.chunks, meta.dtype)
        row = epoch % ce
        for j, lo, hi in self._pieces(start, stop):
            for i in range(-(-n // cs)):  # the chunks along the sample axis
                s_lo, s_hi = i * cs, min(n, (i + 1) * cs)
                target = out[s_lo:s_hi, lo - start : hi - start]
                path = self.dir / meta.encode_chunk_key((epoch // ce, i, j))
                try:
                    raw = path.read_bytes()
                except FileNotFoundError:  # never written: the fill value, as zarr reads it
                    target[:] = meta.fill_value
                    continue
                decode_chunk(raw, meta, self.codec, chunk, path.name)
                target[:] = chunk[row, : s_hi - s_lo, lo - j * cu : hi - j * cu]
        return out
