"""A manifest of every file an output holds, and the check of an output against it.

Torch-free; :func:`build` and :func:`verify` use the standard library only. When
:func:`latent_mi.outputs.safe_output` finishes an output it records, in the output's marker,
each file's size and CRC-32 (``{"files": {relative path: [bytes, crc32]}}``). Zarr reads an
absent chunk as its fill value (NaN), so a deleted chunk of an MI Dataset would otherwise be
read as "no value" without a word; a truncated or altered chunk may decode to wrong numbers.
Every reader of this tool's outputs (interventions, figures, findings, the sweep summary,
the incremental analyzer) opens them through :func:`open_output`, which checks the manifest
first: a missing, truncated or altered file is one :class:`OutputDamaged` line naming it.

Outputs written before manifests existed (no ``files`` in the marker) are read unchecked.
"""

from __future__ import annotations

import json
from pathlib import Path

from latent_mi import checksums
from latent_mi.checksums import file_crc
from latent_mi.outputs import MARKER, OutputError, marker_path

# which command writes an output of each kind: the remedy named in a damage message
PRODUCERS = {
    "mi-dataset": "the analyzer (python -m analyzer)",
    "interventions": "the interventions (python -m trainer.intervene)",
    "robustness-sweep": "the sweep (python -m analyzer.sweep)",
}


class OutputDamaged(OutputError, ValueError):
    """An output of this tool lacks a file or holds an altered one (one line naming it)."""


def build(out: str | Path) -> dict[str, list[int]]:
    """``{relative path: [size in bytes, CRC-32]}`` of every file of ``out`` (its marker aside)."""
    return checksums.build(out, skip=MARKER)


def recorded(out: str | Path) -> tuple[str | None, dict | None]:
    """(kind, manifest) from the marker of ``out``; None where absent (older outputs)."""
    try:
        info = json.loads(marker_path(out).read_text())
    except (OSError, ValueError):
        return None, None
    if not isinstance(info, dict):
        return None, None
    files = info.get("files")
    return info.get("kind"), files if isinstance(files, dict) else None


def verify(out: str | Path, what: str = "output") -> None:
    """Raise OutputDamaged (one line naming the file) unless ``out`` matches its manifest."""
    out = Path(out)
    kind, files = recorded(out)
    if files is None:
        return
    remedy = PRODUCERS.get(kind or "", "the command that wrote it")
    for rel, (size, crc) in files.items():
        path = out if rel == "." else out / rel
        if not path.is_file():
            problem = "is missing"
        elif path.stat().st_size != size:
            problem = f"has {path.stat().st_size} bytes, {size} were written (truncated?)"
        elif file_crc(path) != crc:
            problem = "does not match its checksum (altered after it was written)"
        else:
            continue
        raise OutputDamaged(
            f"{what} {out} is damaged: its file {rel} {problem}; rerun {remedy} to rewrite it"
        )


def open_output(path: str | Path, what: str = "MI Dataset"):
    """``xr.open_zarr(path)`` of an output of this tool, verified against its manifest first.

    Raises OutputDamaged (a ValueError) with one line: absent, damaged or not Zarr.
    """
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise OutputDamaged(f"{what} {path} does not exist")
    verify(path, what)
    try:
        return xr.open_zarr(path)
    except Exception as e:  # zarr raises many kinds for a damaged or foreign store
        line = str(e).splitlines()[0][:160] if str(e) else ""
        raise OutputDamaged(
            f"{what} {path} cannot be opened as Zarr ({type(e).__name__}: {line})"
        ) from None
