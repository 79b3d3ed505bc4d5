"""What the analyzer's chunk reader needs to know of a stored array, and one chunk's decode.

A local Zarr v3 array whose ``zarr.json`` (read with json, no zarr internals) declares a
regular chunk grid of any shape over (epoch, sample, unit), the ``bytes`` codec
(little-endian float16/32/64), at most one of zarr's Blosc, Zstd or GZip compressors (the
trainer writes Blosc-zstd, ``xr.Dataset.to_zarr`` zarr's default Zstd) and optionally a
``crc32c`` checksum last, is decoded here by numcodecs (the library zarr's own codecs call)
straight into a reused buffer. Anything else (sharding, transposes, big-endian, other dtypes,
a remote store, Zarr v2) is read through zarr (:mod:`analyzer.chunk_reader`).
"""

from __future__ import annotations

from dataclasses import dataclass

import google_crc32c
import numcodecs
import numpy as np

# zarr v3 codec name -> the numcodecs codec that decodes it (decoding needs no settings)
COMPRESSORS = {"blosc": numcodecs.Blosc, "zstd": numcodecs.Zstd, "gzip": numcodecs.GZip}
DTYPES = ("float16", "float32", "float64")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class FastLayout:
    """A local Zarr v3 (epoch, sample, unit) array that :func:`decode_chunk` decodes."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]  # any regular grid: e.g. (1, N, 1024) or (4, N, 1024) or (8, 256, 64)
    dtype: np.dtype  # stored (little-endian float16/32/64)
    fill_value: float
    separator: str  # chunk keys: "c/0/0/3" (default encoding) or "0.0.3" (v2 encoding)
    default_keys: bool
    compressor: str | None  # "blosc", "zstd", "gzip" or None (bytes only)
    checksum: bool  # crc32c last: 4 bytes (little-endian CRC-32C of the rest) end each chunk

    def encode_chunk_key(self, index: tuple[int, ...]) -> str:
        key = self.separator.join(str(i) for i in index)
        return f"c{self.separator}{key}" if self.default_keys else key

    @property
    def out_dtype(self) -> np.dtype:
        """What reads return: float16 is widened to float32 (the fused pass's input types)."""
        return np.dtype(np.float32) if self.dtype == np.float16 else self.dtype


def parse_fast_layout(doc: dict) -> FastLayout | None:
    """The layout of a 3-d array ``zarr.json`` document this module decodes, else None."""
    codecs = [c.get("name") for c in doc["codecs"]]
    first = doc["codecs"][0].get("configuration") or {}
    checksum = codecs[-1:] == ["crc32c"]
    rest = codecs[:-1] if checksum else codecs
    keys = doc["chunk_key_encoding"]
    chunks = tuple(int(c) for c in doc["chunk_grid"]["configuration"]["chunk_shape"])
    shape = tuple(int(s) for s in doc["shape"])
    ok = (
        doc.get("zarr_format") == 3
        and doc["chunk_grid"].get("name") == "regular"
        and keys.get("name") in ("default", "v2")
        and len(shape) == 3
        and len(chunks) == 3
        and min(chunks) > 0
        and rest[:1] == ["bytes"]
        and (len(rest) == 1 or (len(rest) == 2 and rest[1] in COMPRESSORS))
        and first.get("endian") == "little"
        and doc["data_type"] in DTYPES
        and not doc.get("storage_transformers")
    )
    if not ok:
        return None
    default = keys["name"] == "default"
    separator = (keys.get("configuration") or {}).get("separator", "/" if default else ".")
    dtype = np.dtype(doc["data_type"]).newbyteorder("<")
    return FastLayout(
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=_fill_value(doc["fill_value"], dtype),
        separator=separator,
        default_keys=default,
        compressor=rest[1] if len(rest) == 2 else None,
        checksum=checksum,
    )


def _fill_value(fill, dtype: np.dtype) -> float:
    """A zarr v3 float fill value: a number, "NaN"/"Infinity"/"-Infinity" or "0x" + raw bytes."""
    if isinstance(fill, str) and fill.startswith("0x"):
        raw = int(fill, 16).to_bytes(dtype.itemsize, "big")
        return float(np.frombuffer(raw, dtype=dtype.newbyteorder(">"))[0])
    return float(fill)


def strip_checksum(raw: bytes, name: str) -> bytes:
    """The chunk bytes before zarr's crc32c trailer, after checking it (ValueError if wrong)."""
    if len(raw) < 4:
        raise ValueError(f"chunk {name}: {len(raw)} bytes, too short for its checksum")
    data = raw[:-4]
    if google_crc32c.value(data) != int.from_bytes(raw[-4:], "little"):
        raise ValueError(f"chunk {name}: checksum mismatch (the file changed after it was written)")
    return data


def zstd_content_size(raw: bytes) -> int | None:
    """The decoded size a Zstandard frame header declares (RFC 8878 3.1.1.1), None if absent."""
    if len(raw) < 6 or raw[:4] != _ZSTD_MAGIC:
        return None
    descriptor = raw[4]
    fcs_flag, single = descriptor >> 6, (descriptor >> 5) & 1
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3]
    size = (0 if not single else 1, 2, 4, 8)[fcs_flag]
    if size == 0 or len(raw) < pos + size:
        return None
    value = int.from_bytes(raw[pos : pos + size], "little")
    return value + 256 if size == 2 else value


def decode_chunk(raw: bytes, layout: FastLayout, codec, chunk: np.ndarray, name: str) -> None:
    """Decode one stored chunk file's bytes into ``chunk`` (its chunk shape, stored dtype)."""
    if layout.checksum:
        raw = strip_checksum(raw, name)
    if layout.compressor == "blosc":
        # the Blosc header's bytes 4-8: the decoded size (little-endian uint32)
        if len(raw) < 16 or int.from_bytes(raw[4:8], "little") != chunk.nbytes:
            raise ValueError(f"chunk {name}: does not decode to {chunk.nbytes} bytes")
        codec.decode(raw, out=chunk)
    elif layout.compressor == "zstd" and zstd_content_size(raw) == chunk.nbytes:
        codec.decode(raw, out=chunk)  # one frame of exactly the chunk's size (zarr writes it)
    elif layout.compressor is not None:  # gzip, or a zstd frame of undeclared size
        decoded = np.frombuffer(codec.decode(raw), dtype=np.uint8)
        if decoded.nbytes != chunk.nbytes:
            raise ValueError(f"chunk {name}: decodes to {decoded.nbytes} bytes, not {chunk.nbytes}")
        chunk.reshape(-1).view(np.uint8)[:] = decoded
    elif len(raw) == chunk.nbytes:
        chunk.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
    else:
        raise ValueError(f"chunk {name}: {len(raw)} bytes, expected {chunk.nbytes}")


def codec_of(layout: FastLayout):
    """The numcodecs codec that decodes this layout's chunks (None: uncompressed)."""
    return None if layout.compressor is None else COMPRESSORS[layout.compressor]()
