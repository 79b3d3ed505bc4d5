"""The analyzer's kernels compile once per machine, by one process, and say so (issue 26.6)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPILING = "compiling the analyzer's kernels (first run only, ~"
WAITING = "waiting for another process to compile the analyzer's kernels"

# ensure_compiled with the warm-up replaced by a 2 s stand-in that counts its calls in argv[1]
FAKE = """
import sys, time
from analyzer import kernel_cache
def warm_up():
    with open(sys.argv[1], "a") as f:
        f.write("compiled\\n")
    time.sleep(2)
kernel_cache.warm_up = warm_up
{patch}
kernel_cache.ensure_compiled()
print(kernel_cache.cache_dir())
"""
# numba finds the package's __pycache__ unwritable (a read-only install): its in-tree locator fails
READ_ONLY = """
import numba.core.caching as caching
def unwritable(self):
    raise PermissionError(13, "Read-only file system", self.get_cache_path())
caching.InTreeCacheLocator.ensure_cache_path = unwritable
"""


def _env(tmp: Path, **extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}
    env.pop("NUMBA_CACHE_DIR", None)
    return {**env, **extra}


def _fake(count: Path, env: dict, patch: str = "") -> subprocess.Popen:
    code = FAKE.format(patch=patch)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(count)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_parallel_first_runs_compile_once_and_later_runs_say_nothing(tmp_path):
    count = tmp_path / "compiles.txt"
    env = _env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    procs = [_fake(count, env) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert count.read_text() == "compiled\n"  # one compile for three first runs
    errs = [err for _, err in outs]
    assert sum(COMPILING in e for e in errs) == 1
    assert sum(WAITING in e for e in errs) >= 1  # the others said why they wait
    assert all(Path(out.strip()).is_relative_to(tmp_path / "cache") for out, _ in outs)
    later = _fake(count, env)
    out, err = later.communicate(timeout=60)
    assert later.returncode == 0 and err == "" and count.read_text() == "compiled\n"


def test_a_read_only_install_caches_in_the_user_cache_folder(tmp_path):
    count = tmp_path / "compiles.txt"
    env = _env(tmp_path, XDG_CACHE_HOME=str(tmp_path / "user-cache"))
    proc = _fake(count, env, READ_ONLY)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    where = Path(out.strip())
    assert where.is_relative_to(tmp_path / "user-cache" / "numba"), where
    assert COMPILING in err and list(where.glob("latent-mi-kernels-*.ready"))


@pytest.mark.slow
def test_two_first_analyses_compile_once_and_a_third_compiles_nothing(tiny_run, tmp_path):
    """Real kernels, an empty cache: two analyzer processes started together compile once;
    a third finds every kernel it calls in numba's cache (no cache miss)."""
    env = _env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    store = str(tiny_run / "activations.zarr")
    cmd = [sys.executable, "-m", "analyzer", store, "--threads", "1", "--no-progress"]
    procs = [
        subprocess.Popen(
            [*cmd, "--out", str(tmp_path / f"mi{i}.zarr")],
            env=env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errs = [p.communicate(timeout=900)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sum(COMPILING in e for e in errs) == 1 and sum(WAITING in e for e in errs) == 1
    misses = (
        "import sys; from analyzer.mi_tensors import Options, analyze; import numba;"
        "analyze(sys.argv[1], sys.argv[2], Options());"
        "mods = [m for n, m in sys.modules.items() if n.startswith('analyzer.core.')];"
        "ds = [v for m in mods for v in vars(m).values() if hasattr(v, 'stats')];"
        "print(sum(sum(d.stats.cache_misses.values()) for d in ds),"
        " sum(sum(d.stats.cache_hits.values()) for d in ds))"
    )
    third = subprocess.run(
        [sys.executable, "-c", misses, store, str(tmp_path / "mi3.zarr")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert third.returncode == 0, third.stderr
    assert COMPILING not in third.stderr
    n_misses, n_hits = map(int, third.stdout.split())
    assert n_misses == 0 and n_hits > 10


# one kernel of kernels.py that inlines plugin.py's formula, called after ensure_compiled
ONE_KERNEL = """
import numpy as np
from analyzer import kernel_cache
from analyzer.core import kernels, plugin
kernel_cache.warm_up = lambda: None  # compile lazily: only the kernel called below
kernel_cache.ensure_compiled()
counts = np.array([[[5, 1, 0]], [[0, 2, 6]]], dtype=np.int32)  # (target, channel, bin)
print(repr(float(kernels.mi_from_target_counts(counts, plugin.xlogx_table(14))[0])))
"""


def test_an_edited_inlined_helper_recompiles_the_kernels_that_inline_it(tmp_path):
    """numba's cache checks only a kernel's own file: after an edit of plugin.py, the kernels of
    kernels.py must not load their cached machine code with the old formula inlined."""
    import shutil

    src = tmp_path / "src"
    for package in ("analyzer", "latent_mi"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**_env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "cache")), "PYTHONPATH": str(src)}

    def mi() -> float:
        proc = subprocess.run(
            [sys.executable, "-c", ONE_KERNEL],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return float(proc.stdout.strip())

    before = mi()
    assert before == pytest.approx(0.54651, abs=1e-4)  # sklearn.metrics.mutual_info_score, below
    plugin = src / "analyzer" / "core" / "plugin.py"
    text = plugin.read_text()
    assert text.count("return signed_sum / n + log_n") == 1
    plugin.write_text(
        text.replace("return signed_sum / n + log_n", "return 2.0 * (signed_sum / n + log_n)")
    )
    assert mi() == pytest.approx(2 * before, rel=1e-12)


def test_the_fixture_of_the_recompile_test_is_the_plug_in_mi():
    from sklearn.metrics import mutual_info_score

    target = [0] * 6 + [1] * 8
    bins = [0] * 5 + [1] + [1] * 2 + [2] * 6
    assert mutual_info_score(target, bins) == pytest.approx(0.54651, abs=1e-4)
