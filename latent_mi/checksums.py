"""Size and CRC-32 of every file of an output (standard library only): the manifest an
output's marker records (:mod:`latent_mi.outputs` writes it, :mod:`latent_mi.manifest`
checks it)."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

_BLOCK = 1 << 22  # bytes read at a time for the checksum


def file_crc(path: Path) -> int:
    """CRC-32 of a file's bytes (zlib)."""
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            crc = zlib.crc32(block, crc)
    return crc


def _files(out: Path, skip: str) -> list[tuple[str, Path]]:
    """(relative name, path) of every file of a directory output but ``skip`` (its marker),
    or ``(".", out)`` for a file."""
    if not out.is_dir():
        return [(".", out)]
    found = []
    for root, dirs, names in os.walk(out):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            rel = path.relative_to(out).as_posix()
            if rel != skip:
                found.append((rel, path))
    return found


def build(out: str | Path, skip: str) -> dict[str, list[int]]:
    """``{relative path: [size in bytes, CRC-32]}`` of every file of ``out`` but ``skip``."""
    return {rel: [path.stat().st_size, file_crc(path)] for rel, path in _files(Path(out), skip)}
