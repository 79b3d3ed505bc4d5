"""The analyzer's compiled kernels: compiled once per machine, by one process, and said so.

numba compiles the kernels of ``analyzer/core`` on their first call and caches the machine
code on disk (``cache=True``): next to the sources (``analyzer/core/__pycache__``) when that
folder is writable, else in the user's cache folder (numba's own fallback for a read-only
install, e.g. ``~/.cache/numba``), or in ``NUMBA_CACHE_DIR`` when set. The first analysis
of a fresh install would compile them silently for minutes, and parallel first jobs would
each compile them again. :func:`ensure_compiled` (called by every analysis) prevents both:

* a *ready stamp* in the cache folder says the kernels of these sources, this numba and
  this CPU are cached: nothing to do (one ``stat``);
* otherwise the first process takes an exclusive lock file there, prints one line
  ("compiling the analyzer's kernels (first run only, ~N s)..."), empties numba's cache index
  of every kernel of ``analyzer/core`` (numba checks only a kernel's own source file, so a
  kernel that inlines an edited helper of another file, e.g. ``plugin.py``, would otherwise
  load its stale machine code), compiles every kernel by analyzing a tiny generated store
  (relu and tanh rules, every whole-layer estimator) and writes the stamp; processes that
  start meanwhile say they wait, then find the stamp.

``python -m analyzer.kernel_cache`` compiles them now (e.g. right after installing).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COMPILE_SECONDS = 30  # one idle core (2-core AMD EPYC VM: 27-28 s CPU; ~110 s wall at load 12)
_ready = False  # this process checked (or made) the cache
_warming = False  # this process is compiling: the warm-up's own analysis must not recurse


def cache_dir() -> Path:
    """The folder numba caches ``analyzer/core``'s kernels in (the locator numba chose)."""
    from analyzer.core import fused

    for value in vars(fused).values():
        cache = getattr(value, "_cache", None)
        path = getattr(cache, "_cache_path", None)
        if path:
            return Path(path)
    from numba import config  # numba without the private attribute: its documented choices

    if config.CACHE_DIR:
        return Path(config.CACHE_DIR)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "numba"


def cache_key() -> str:
    """Digest of what numba's cache depends on: the kernel sources (mtime and size, as numba
    checks them), numba's and Python's versions, and the CPU (name and features)."""
    import llvmlite.binding as llvm
    import numba

    core = Path(__file__).resolve().parent / "core"
    parts = [numba.__version__, sys.version, llvm.get_host_cpu_name()]
    parts.append(llvm.get_host_cpu_features().flatten())
    for src in sorted(core.glob("*.py")):
        st = src.stat()
        parts.append(f"{src.name}:{st.st_mtime_ns}:{st.st_size}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def stamp_path() -> Path:
    return cache_dir() / f"latent-mi-kernels-{cache_key()}.ready"


@contextlib.contextmanager
def _exclusive(lock: Path, say):
    """Hold an exclusive lock on ``lock`` (waiting, and saying so, when another process has it);
    no lock where the platform or the folder allows none."""
    try:
        import fcntl

        lock.parent.mkdir(parents=True, exist_ok=True)
        f = lock.open("a")
    except (ImportError, OSError):
        yield
        return
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            say("waiting for another process to compile the analyzer's kernels (first run only)...")
            t0 = time.perf_counter()
            fcntl.flock(f, fcntl.LOCK_EX)
            say(f"... waited {time.perf_counter() - t0:.0f} s")
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def ensure_compiled(say=_say) -> bool:
    """Make sure the kernels are compiled and cached, compiling them here (under the lock)
    when no process has; True when this call compiled them."""
    global _ready, _warming
    if _ready or _warming:
        return False
    try:
        stamp = stamp_path()
    except OSError:  # a source not stat-able (zip install): numba compiles lazily as before
        _ready = True
        return False
    if stamp.exists():
        _ready = True
        return False
    with _exclusive(stamp.with_name("latent-mi-kernels.lock"), say):
        if stamp.exists():  # another process compiled them while this one waited
            _ready = True
            return False
        say(
            f"compiling the analyzer's kernels (first run only, ~{COMPILE_SECONDS} s on an idle "
            "core)..."
        )
        t0 = time.perf_counter()
        _warming = True
        try:
            forget_compiled_kernels()
            warm_up()
        finally:
            _warming = False
        seconds = time.perf_counter() - t0
        with contextlib.suppress(OSError):  # an unwritable cache: numba said so already
            stamp.write_text(json.dumps({"seconds": round(seconds, 1), "pid": os.getpid()}))
        say(f"compiled the analyzer's kernels in {seconds:.0f} s (cached in {stamp.parent})")
    _ready = True
    return True


def forget_compiled_kernels() -> int:
    """Empty numba's on-disk cache index of every cached kernel of ``analyzer/core`` (the index
    files numba wrote for these kernels; nothing else is touched), so the next call of each
    compiles from the current sources; returns how many kernels were forgotten."""
    import importlib
    import pkgutil

    import analyzer.core as core

    forgotten = 0
    for module_info in pkgutil.iter_modules(core.__path__):
        module = importlib.import_module(f"analyzer.core.{module_info.name}")
        for value in vars(module).values():
            cache = getattr(value, "_cache", None)
            if getattr(value, "__module__", None) == module.__name__ and hasattr(cache, "flush"):
                with contextlib.suppress(OSError):  # an unwritable cache folder: numba recompiles
                    cache.flush()
                    forgotten += 1
    return forgotten


def tiny_store(path: Path, activation: str = "relu", seed: int = 0) -> Path:
    """A contract-following activation store (3 epochs, 48 samples, 3 classes, a 6-channel
    and a 20-channel site, float32, the trainer's chunking), for compiling the kernels."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    n, widths, n_epochs = 48, (6, 20), 3
    labels = np.arange(n) % 3
    act = rng.normal(size=(n_epochs, n, sum(widths))).astype(np.float32)
    act += labels[None, :, None].astype(np.float32)
    act = np.tanh(act) if activation == "tanh" else np.maximum(act, 0)
    sites = [{"name": f"s{i}", "kind": "conv", "channels": w} for i, w in enumerate(widths)]
    unit_site = np.repeat([s["name"] for s in sites], widths)
    ds = xr.Dataset(
        {
            "activation": (("epoch", "sample", "unit"), act),
            "label": ("sample", labels.astype(np.int16)),
            "input_summary": (("sample", "input_feature"), rng.normal(size=(n, 4)).astype("f4")),
            "val_acc": ("epoch", np.array([0.3, 0.6, 0.7])),
            "val_loss": ("epoch", np.array([1.1, 0.9, 0.8])),
        },
        coords={
            "epoch": np.arange(n_epochs, dtype=np.int32),
            "channel": ("unit", np.concatenate([np.arange(w) for w in widths]).astype(np.int32)),
            "site": ("unit", unit_site.astype(object)),
            "site_kind": ("unit", np.full(sum(widths), "conv", dtype=object)),
        },
        attrs={
            "sites": json.dumps(sites),
            "classes": json.dumps(["a", "b", "c"]),
            "status": "complete",
            "activation": activation,
        },
    )
    from zarr.codecs import BloscCodec

    blosc = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")  # the trainer's layout
    encoding = {"activation": {"chunks": (1, n, sum(widths)), "compressors": [blosc]}}
    ds.to_zarr(path, mode="w", encoding=encoding, consolidated=False, zarr_format=3)
    return path


def warm_up() -> None:
    """Compile (and cache) every kernel an analysis calls: analyze tiny relu and tanh stores,
    one with the noisy whole-layer estimator, one on 1 and one on 2 dask threads."""
    import dask

    from analyzer.layer_info import LayerInfoOptions
    from analyzer.mi_tensors import Options, analyze

    with tempfile.TemporaryDirectory(prefix="latent-mi-warm-up-") as tmp:
        # 2 workers split the all-pairs MI into pieces (strided position arrays), 1 does not
        for activation, betas, workers in (("relu", (), 2), ("tanh", (0.1,), 1)):
            store = tiny_store(Path(tmp) / f"{activation}.zarr", activation)
            opts = Options(bins=8, permutations=4, layer_info=LayerInfoOptions(betas=betas))
            with dask.config.set(scheduler="threads", num_workers=workers):
                analyze(store, Path(tmp) / f"{activation}-mi.zarr", opts)


def main(argv: list[str] | None = None) -> int:
    """``python -m analyzer.kernel_cache [--where]``: compile the kernels now (or say where)."""
    from analyzer import kernel_cache  # not ``__main__``'s copy: the one analyses consult

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv and argv[0] == "--where":
        print(kernel_cache.cache_dir())
        return 0
    if not kernel_cache.ensure_compiled():
        print(f"the analyzer's kernels are already compiled (cached in {kernel_cache.cache_dir()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
