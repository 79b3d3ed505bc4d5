"""Drawing helpers on matplotlib's object-oriented API: no pyplot, no global backend."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure


@dataclass
class Drawn:
    """A drawn figure and the files it was saved to (none when ``out`` was None).

    Shown inline by Jupyter (``_repr_png_``) whatever matplotlib backend is active."""

    figure: Figure
    paths: list[Path] = field(default_factory=list)

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=90)
        return buf.getvalue()


def new_figure(nrows: int, ncols: int, width: float, height: float):
    """A constrained-layout Figure of nrows x ncols axes (a 2-D array), each width x height in."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def band(ax, x, values, limits=(None, None), **kw):
    """Mean line and +-1 sd band over the first axis (seeds), the band clipped to ``limits``
    (the range the quantity can take); returns the line."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    mean, sd = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    (line,) = ax.plot(x, mean, **{"marker": "o", "ms": 3, **kw})
    if values.shape[0] > 1:
        lo, hi = np.clip(mean - sd, *limits), np.clip(mean + sd, *limits)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    return line


def bins_of(*datasets: xr.Dataset) -> str:
    """The bin count(s) the results were computed with, e.g. '20 bins' ('? bins' if unknown)."""
    found = set()
    for ds in datasets:
        if "bins" in ds.coords:
            found.update(int(b) for b in np.ravel(ds.bins.values) if np.isfinite(b))
    return f"{'/'.join(map(str, sorted(found))) or '?'} bins"


def finish(fig: Figure, title: str, out: str | Path | None, formats) -> Drawn:
    """Set the title and save OUT.<fmt> for each format (parents created). No axis uses an
    offset (+8.317): small wiggles on a large level read as what they are."""
    from matplotlib.ticker import ScalarFormatter

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_formatter(), ScalarFormatter):
                axis.get_major_formatter().set_useOffset(False)
    import textwrap

    chars = max(20, int(fig.get_figwidth() * 13))  # ~13 characters per inch at 10 pt
    fig.suptitle(textwrap.fill(title, chars), fontsize=10)  # wrapped, never cut off
    paths = []
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            path = out.with_suffix(f".{fmt}")
            fig.savefig(path, dpi=130)
            paths.append(path)
    return Drawn(fig, paths)
