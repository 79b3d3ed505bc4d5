"""Read one epoch's unit range of a stored activation array into a reused per-thread buffer.

Through zarr's array API every read allocates its output and one decode buffer per chunk
(at VGG-16 width ~150 MB per epoch), which the kernel maps in page by page and unmaps again:
2.7x the page faults of this reader, ~0.35 s of system time per 6-epoch analysis on 2 cores,
~150 MB more peak memory, and two worker threads faulting at once contend in the kernel.
Here, for the layout the trainer writes (a local Zarr v3 array, chunks of one epoch x every
sample x a unit range, little-endian float32/float64, Blosc or no compressor, then optionally
zarr's ``crc32c`` checksum, verified here as zarr does), each chunk file
is decoded by numcodecs' Blosc (the library zarr's own Blosc codec calls) straight into a
per-thread scratch chunk and copied into a per-thread output buffer; both are reused by the
thread's next read. Any other layout (a remote store, sharding, other codecs or dtypes) is
read through zarr's array API. Values are identical either way (``tests/test_chunk_reader.py``).

The returned array is a view of the calling thread's buffer: valid until that thread's next
:meth:`UnitReader.read`; nothing derived from it may keep a view (the epoch pass keeps only
computed arrays). The buffers (one segment and one chunk per worker thread) live until
:func:`release_buffers`, which :func:`analyzer.mi_tensors.analyze` calls when it ends.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numcodecs
import numpy as np
import zarr

from analyzer.activations import StoreError, corrupt_chunk_message
from latent_mi import contract as C


@dataclass(frozen=True)
class FastLayout:
    """What this reader needs of a local Zarr v3 array's ``zarr.json`` (read with json)."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    fill_value: float
    separator: str  # chunk keys: "c/0/0/3" (default encoding) or "0.0.3" (v2 encoding)
    default_keys: bool
    compressed: bool  # Blosc after the bytes codec
    checksum: bool  # crc32c last: 4 bytes (little-endian CRC-32C of the rest) end each chunk

    def encode_chunk_key(self, index: tuple[int, ...]) -> str:
        key = self.separator.join(str(i) for i in index)
        return f"c{self.separator}{key}" if self.default_keys else key


def parse_fast_layout(doc: dict) -> tuple[FastLayout, np.dtype] | None:
    """The layout and dtype of a (epoch, sample, unit) array this reader decodes, else None."""
    codecs = [c.get("name") for c in doc["codecs"]]
    first = doc["codecs"][0].get("configuration") or {}
    checksum = codecs[-1:] == ["crc32c"]
    rest = codecs[:-1] if checksum else codecs
    keys = doc["chunk_key_encoding"]
    chunks = tuple(doc["chunk_grid"]["configuration"]["chunk_shape"])
    shape = tuple(doc["shape"])
    ok = (
        doc.get("zarr_format") == 3
        and doc["chunk_grid"].get("name") == "regular"
        and keys.get("name") in ("default", "v2")
        and len(shape) == 3
        and chunks[:2] == (1, shape[1])
        and rest in (["bytes"], ["bytes", "blosc"])
        and first.get("endian") == "little"
        and doc["data_type"] in ("float32", "float64")
        and not doc.get("storage_transformers")
    )
    if not ok:
        return None
    default = keys["name"] == "default"
    separator = (keys.get("configuration") or {}).get("separator", "/" if default else ".")
    layout = FastLayout(
        shape, chunks, float(doc["fill_value"]), separator, default, len(rest) == 2, checksum
    )
    return layout, np.dtype(doc["data_type"]).newbyteorder("<")


def strip_checksum(raw: bytes, name: str) -> bytes:
    """The chunk bytes before zarr's crc32c trailer, after checking it (ValueError if wrong)."""
    if len(raw) < 4:
        raise ValueError(f"chunk {name}: {len(raw)} bytes, too short for its checksum")
    data = raw[:-4]
    if google_crc32c.value(data) != int.from_bytes(raw[-4:], "little"):
        raise ValueError(f"chunk {name}: checksum mismatch (the file changed after it was written)")
    return data


_buffers: dict[int, dict[str, np.ndarray]] = {}  # thread id -> name -> 1-D buffer, grown on demand


def _buffer(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A (shape, dtype) view of this thread's reusable buffer ``name`` (contents undefined)."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    mine = _buffers.setdefault(threading.get_ident(), {})
    buf = mine.get(name)
    if buf is None or buf.size < n:
        buf = mine[name] = np.empty(n, dtype=np.uint8)
    return buf[:n].view(dtype).reshape(shape)


def release_buffers() -> None:
    """Drop every thread's buffers (the analyzer calls it when an analysis ends; a read in
    progress keeps its own reference)."""
    _buffers.clear()


class UnitReader:
    """(sample, unit) values of one epoch and unit range of ``{store}/activation``."""

    def __init__(self, store: str):
        self.store = store
        self.dir = Path(store) / C.ACTIVATION
        self.array = None  # zarr's array: the general path (any other layout)
        self.meta = self._fast_layout()
        if self.meta is None:
            self.array = zarr.open_array(str(self.dir), mode="r")

    def _fast_layout(self) -> FastLayout | None:
        """The array's layout when this reader decodes its chunks itself, else None."""
        try:
            parsed = parse_fast_layout(json.loads((self.dir / "zarr.json").read_bytes()))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError):
            return None  # not a local Zarr v3 array: zarr reads it (or names the problem)
        if parsed is None:
            return None
        meta, self.dtype = parsed
        self.blosc = numcodecs.Blosc() if meta.compressed else None
        return meta

    def read(self, epoch: int, start: int, stop: int) -> np.ndarray:
        """Values (sample, stop - start) of epoch index ``epoch``: float32 or float64; a view of
        this thread's buffer when read here (valid until its next read), else a new array."""
        try:
            if self.meta is None:
                values = self.array[epoch, :, start:stop]
                return (
                    values
                    if values.dtype in (np.float32, np.float64)
                    else values.astype(np.float32)
                )
            return self._read_chunks(epoch, start, stop)
        except Exception as e:  # a corrupt chunk: name the store, epoch and variable
            raise StoreError(
                corrupt_chunk_message(self.store)
                or f"{self.store}: epoch index {epoch}, units {start}-{stop}: cannot read the "
                f"activation chunk: {type(e).__name__}: {e}"
            ) from None

    def _read_chunks(self, epoch: int, start: int, stop: int) -> np.ndarray:
        n_epochs, n, n_units = self.meta.shape
        if not (0 <= epoch < n_epochs and 0 <= start < stop <= n_units):
            raise IndexError(f"epoch {epoch}, units {start}-{stop} outside shape {self.meta.shape}")
        width = self.meta.chunks[2]
        out = _buffer("out", (n, stop - start), self.dtype)
        chunk = _buffer("chunk", (n, width), self.dtype)
        for j in range(start // width, (stop - 1) // width + 1):
            lo, hi = max(start, j * width), min(stop, (j + 1) * width)
            path = self.dir / self.meta.encode_chunk_key((epoch, 0, j))
            try:
                raw = path.read_bytes()
            except FileNotFoundError:  # never written: the fill value, as zarr reads it
                out[:, lo - start : hi - start] = self.meta.fill_value
                continue
            if self.meta.checksum:
                raw = strip_checksum(raw, path.name)
            if self.blosc is not None:
                # the Blosc header's bytes 4-8: the decoded size (little-endian uint32)
                if len(raw) < 16 or int.from_bytes(raw[4:8], "little") != chunk.nbytes:
                    raise ValueError(f"chunk {path.name}: does not decode to {chunk.nbytes} bytes")
                self.blosc.decode(raw, out=chunk)
            elif len(raw) == chunk.nbytes:
                chunk.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
            else:
                raise ValueError(f"chunk {path.name}: {len(raw)} bytes, expected {chunk.nbytes}")
            out[:, lo - start : hi - start] = chunk[:, lo - j * width : hi - j * width]
        return out
