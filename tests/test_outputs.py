"""latent_mi.outputs: safe replacement, locks, stale temporaries, write errors."""

import errno
import os
import subprocess
import sys

import pytest

from latent_mi import outputs
from latent_mi.outputs import LockError, OutputError, safe_output


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_dir(tmp, text="new"):
    tmp.mkdir()
    (tmp / "data").write_text(text)


def test_new_output_is_written_marked_and_replaced_only_when_ours(tmp_path):
    out = tmp_path / "res.zarr"
    with safe_output(out, "mi-dataset") as tmp:
        _write_dir(tmp, "one")
    assert (out / "data").read_text() == "one" and outputs.output_kind(out) == "mi-dataset"
    with safe_output(out, "mi-dataset") as tmp:
        _write_dir(tmp, "two")
    assert (out / "data").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.zarr"]


def test_folder_with_other_files_is_never_replaced(tmp_path):
    out = tmp_path / "bins-20"
    out.mkdir()
    (out / "other-run.zarr").mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match=r"bins-20 exists and is not a mi-dataset output") as e:
        with safe_output(out, "mi-dataset"):
            raise AssertionError("must stop before any work")  # pragma: no cover
    assert "\n" not in str(e.value)
    assert (out / "notes.txt").read_text() == "keep me" and (out / "other-run.zarr").is_dir()


def test_plain_file_and_other_kind_are_refused(tmp_path):
    plain = tmp_path / "out.zarr"
    plain.write_text("precious")
    with pytest.raises(OutputError, match="a file it did not write"):
        with safe_output(plain, "mi-dataset"):
            pass
    assert plain.read_text() == "precious"
    other = tmp_path / "iv"
    with safe_output(other, "interventions") as tmp:
        _write_dir(tmp)
    with pytest.raises(OutputError, match="is a 'interventions' output, not 'mi-dataset'"):
        with safe_output(other, "mi-dataset"):
            pass


def test_empty_folder_may_be_replaced_and_file_outputs_work(tmp_path):
    (tmp_path / "empty").mkdir()
    with safe_output(tmp_path / "empty", "k") as tmp:
        _write_dir(tmp)
    assert outputs.output_kind(tmp_path / "empty") == "k"
    f = tmp_path / "table.csv"
    for text in ("a", "b"):
        with safe_output(f, "table") as tmp:
            tmp.write_text(text)
    assert f.read_text() == "b" and outputs.output_kind(f) == "table"


def test_failure_leaves_old_output_and_no_temporary(tmp_path):
    out = tmp_path / "res.zarr"
    with safe_output(out, "k") as tmp:
        _write_dir(tmp, "old")
    with pytest.raises(KeyboardInterrupt):
        with safe_output(out, "k") as tmp:
            _write_dir(tmp, "half")
            raise KeyboardInterrupt
    assert (out / "data").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.zarr"]


def test_stale_temporaries_of_dead_processes_are_cleaned(tmp_path):
    out = tmp_path / "res.zarr"
    dead = tmp_path / f".res.zarr.tmp-{_dead_pid()}"
    dead.mkdir()
    (dead / "zarr.json").write_text("{}")
    live = tmp_path / f".res.zarr.tmp-{os.getppid()}"  # a live process: left alone
    live.mkdir()
    unrelated = tmp_path / f".other.zarr.tmp-{_dead_pid()}"
    unrelated.mkdir()
    with safe_output(out, "k") as tmp:
        _write_dir(tmp)
    assert not dead.exists() and live.exists() and unrelated.exists()


def test_second_writer_stops_naming_the_holder_pid(tmp_path):
    out = tmp_path / "res.zarr"
    with outputs.output_lock(out):
        with pytest.raises(LockError, match=rf"being written by process {os.getpid()}") as e:
            with safe_output(out, "k"):
                pass
        assert "\n" not in str(e.value)
    with outputs.dir_lock(tmp_path):
        with pytest.raises(LockError, match=rf"{tmp_path} is being written by process"):
            with outputs.dir_lock(tmp_path):
                pass
    assert not (tmp_path / outputs.LOCK_NAME).exists()  # released and removed


def test_lock_held_by_another_process_and_stale_lock_taken_over(tmp_path):
    code = (
        "import sys, time; from latent_mi import outputs\n"
        "with outputs.dir_lock(sys.argv[1]):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=rf"process {proc.pid}"):
            with outputs.dir_lock(tmp_path):
                pass
    finally:
        proc.kill()  # like kill -9: its lock file stays behind, stale
        proc.wait()
    assert (tmp_path / outputs.LOCK_NAME).exists()
    with outputs.dir_lock(tmp_path):
        assert (tmp_path / outputs.LOCK_NAME).read_text().split()[0] == str(os.getpid())


def test_write_error_names_device_and_path(tmp_path):
    msg = outputs.write_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x")
    assert msg.startswith("no space left on ") and msg.endswith(
        f"writing {tmp_path / 'x'}; free space and rerun"
    )
    assert "read-only" in outputs.write_error(OSError(errno.EROFS, "ro"), tmp_path)


def test_write_failure_tells_output_errors_from_input_errors(tmp_path):
    out = tmp_path / "mi" / "run.zarr"
    tmp = outputs.temp_path(out)
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp / "c" / "0"))
    assert outputs.write_failure(full, out).startswith("no space left on ")
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "mi"))
    assert (
        outputs.write_failure(denied, out) == f"cannot write {tmp_path / 'mi'}: permission denied"
    )
    reading = OSError(errno.EACCES, "Permission denied", str(tmp_path / "store.zarr" / "zarr.json"))
    assert outputs.write_failure(reading, out) is None
    assert outputs.write_failure(ValueError("x"), out) is None


def test_unmarked_output_recognised_by_its_metadata(tmp_path):
    out = tmp_path / "old.zarr"
    out.mkdir()
    (out / "zarr.json").write_text('{"attributes": {"bins": 20}}')
    with pytest.raises(OutputError):
        outputs.check_replaceable(out, "mi-dataset")
    outputs.check_replaceable(out, "mi-dataset", recognise=lambda p: (p / "zarr.json").is_file())


def test_reopening_a_marked_output_prints_no_zarr_warning(tmp_path):
    """zarr warns "Object at .latent-mi-output.json is not recognized" on every reopen of a
    marked store; the tool's packages silence exactly that warning, nothing else."""
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    code = (
        "import warnings, numpy as np, xarray as xr\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('default')\n"
        "    warnings.filterwarnings('ignore', message='.*Consolidated metadata')\n"
        "    import latent_mi.outputs as o  # the filter is installed at import\n"
        f"    p = {str(tmp_path / 'mi.zarr')!r}\n"
        "    xr.Dataset({'a': ('x', np.arange(3))}).to_zarr(p)\n"
        "    o.write_marker(p, 'mi-dataset')\n"
        "    xr.open_zarr(p).load()\n"
        "    xr.open_zarr(p, consolidated=False).load()\n"
        "    warnings.warn('Object at other.json is not recognized', UserWarning)\n"
        "msgs = [str(x.message) for x in w]\n"
        "assert not any('latent-mi-output' in m for m in msgs), msgs\n"
        "assert any('other.json' in m for m in msgs), msgs\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
