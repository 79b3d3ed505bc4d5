"""Safe outputs: replace only our own output, write via a temp sibling, lock the writer.

Torch-free, standard library only. Every writer of the project uses it:

* :func:`safe_output` -- ``with safe_output(OUT, "mi-dataset") as tmp:`` write the result
  (a directory or a file) at ``tmp``; on success it is marked as this tool's output of that
  kind and renamed into place (an older output of the same kind is swapped out and removed
  only then). The marker records every file's size and checksum (:mod:`latent_mi.manifest`,
  which readers verify). Anything else at OUT -- a folder holding other files, a plain file, an
  output of another kind -- stops with an :class:`OutputError` naming it, before any work.
  A failure leaves OUT as it was and removes the temporary.
* :func:`lock` / :func:`output_lock` / :func:`dir_lock` -- an exclusive lock (``fcntl.flock``
  on a PID file) held while writing; a second writer stops with a :class:`LockError` naming
  the holder's PID. The kernel drops the lock when its process dies (even ``kill -9``), so a
  stale lock file of a dead process is simply taken over.
* :func:`clean_stale_temps` -- removes ``.OUT.tmp-PID`` / ``.OUT.old-PID`` siblings left by
  processes that no longer run.
* :func:`write_error` -- the one-line message of a failed write (``no space left on DEVICE
  writing PATH``, read-only file system, permission denied).

Ownership is recorded in a marker: ``OUT/.latent-mi-output.json`` inside a directory output,
``.OUT.latent-mi-output.json`` beside a file output. Its JSON holds ``tool`` and ``kind``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from latent_mi import checksums

TOOL = "latent-mi"
MARKER = ".latent-mi-output.json"
LOCK_NAME = ".latent-mi.lock"


class OutputError(RuntimeError):
    """An output cannot be written or replaced; the message is one line naming the path."""


class LockError(OutputError):
    """Another live process holds the lock of the output."""


# ----------------------------------------------------------------------------- markers


def marker_path(out: str | Path) -> Path:
    """Where the ownership marker of ``out`` lives (inside a directory, beside a file)."""
    out = Path(out)
    if out.is_dir():
        return out / MARKER
    return out.with_name(f".{out.name}{MARKER}")


def write_marker(out: str | Path, kind: str, **extra) -> None:
    """Mark ``out`` (an existing directory or file) as this tool's output of ``kind``."""
    info = {"tool": TOOL, "kind": kind, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    info.update(extra)
    marker_path(out).write_text(json.dumps(info, sort_keys=True))


def output_kind(out: str | Path) -> str | None:
    """The kind recorded in the marker of ``out``, or None if it is not our output."""
    try:
        info = json.loads(marker_path(out).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("tool") != TOOL:
        return None
    kind = info.get("kind")
    return kind if isinstance(kind, str) else None


def check_replaceable(out: str | Path, kind: str, recognise=None) -> None:
    """Raise OutputError unless ``out`` is absent, an empty folder, or our output of ``kind``.

    ``recognise(out) -> bool`` optionally accepts an unmarked output of that kind written
    before markers existed (e.g. by its own metadata).
    """
    out = Path(out)
    if not os.path.lexists(out):
        return
    if out.is_symlink():
        raise OutputError(f"{out} is a symbolic link, not a {kind} output: not replacing it")
    if out.is_dir() and not any(out.iterdir()):
        return
    found = output_kind(out)
    if found == kind or (found is None and recognise is not None and _recognised(recognise, out)):
        return
    what = "folder" if out.is_dir() else "file"
    if found is None:
        raise OutputError(
            f"{out} exists and is not a {kind} output of this tool (a {what} it did not "
            "write): not replacing it; choose another --out or remove it yourself"
        )
    raise OutputError(
        f"{out} is a {found!r} output, not {kind!r}: not replacing it; choose another --out"
    )


def _recognised(recognise, out: Path) -> bool:
    try:
        return bool(recognise(out))
    except Exception:  # a damaged or foreign output is simply not recognised
        return False


# ----------------------------------------------------------------------------- temporaries

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)$")


def temp_path(out: str | Path, tag: str = "tmp") -> Path:
    """``.OUT.tmp-PID``: the sibling a result is written to before being renamed."""
    out = Path(out)
    return out.with_name(f".{out.name}.{tag}-{os.getpid()}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def clean_stale_temps(out: str | Path) -> list[Path]:
    """Remove ``.OUT.tmp-PID`` / ``.OUT.old-PID`` siblings of dead processes; returns them."""
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    for entry in out.parent.iterdir():
        m = _TEMP.match(entry.name)
        if m and m["name"] == out.name and not pid_alive(int(m["pid"])):
            _remove(entry)
            removed.append(entry)
    return removed


# ----------------------------------------------------------------------------- locks


def _holder(path: Path) -> str:
    try:
        text = path.read_text().split()
    except OSError:
        return "another process"
    if not text:
        return "another process"
    host = f" on {text[1]}" if len(text) > 1 and text[1] != socket.gethostname() else ""
    return f"process {text[0]}{host}"


@contextmanager
def lock(lock_file: str | Path, what: str | Path, wait: float = 0) -> Iterator[Path]:
    """Hold an exclusive lock on ``lock_file`` (a PID file) while writing ``what``.

    Raises LockError naming the holder's PID if another live process holds it for more
    than ``wait`` seconds (waiting is said once on the ``latent_mi`` logger). The lock
    file is removed on release.
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    deadline, said = time.monotonic() + wait, False
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() < deadline:
                if not said:
                    logging.getLogger("latent_mi").warning(
                        "%s is held by %s (lock %s): waiting up to %.0f s for it to end",
                        what,
                        _holder(lock_file),
                        lock_file,
                        wait,
                    )
                    said = True
                time.sleep(0.2)
                continue
            raise LockError(
                f"{what} is being written by {_holder(lock_file)} (lock {lock_file}); "
                "wait for it to finish or stop it"
            ) from None
        # the file may have been removed by its previous holder between open and flock
        try:
            same = os.stat(lock_file).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield lock_file
    finally:
        try:
            os.unlink(lock_file)
        except FileNotFoundError:
            pass
        os.close(fd)


def output_lock(out: str | Path):
    """The lock of an output that is replaced by rename: the sibling ``.OUT.lock``."""
    out = Path(out)
    return lock(out.with_name(f".{out.name}.lock"), out)


def dir_lock(directory: str | Path, wait: float = 0):
    """The lock of a directory written in place (a run directory): ``DIR/.latent-mi.lock``."""
    directory = Path(directory)
    return lock(directory / LOCK_NAME, directory, wait)


# ----------------------------------------------------------------------------- errors


def _device_of(path: Path) -> str:
    """The device (from /proc/mounts) or mount point holding ``path``."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1] == str(p):
                return f"{fields[0]} ({p})"
    except OSError:
        pass
    return str(p)


def write_error(e: OSError, path: str | Path) -> str:
    """One line for an OSError raised while writing ``path``."""
    path = Path(getattr(e, "filename", None) or path)
    if e.errno == errno.ENOSPC:
        return f"no space left on {_device_of(path)} writing {path}; free space and rerun"
    if e.errno == errno.EDQUOT:
        return f"disk quota exceeded on {_device_of(path)} writing {path}"
    if e.errno == errno.EROFS:
        return f"cannot write {path}: read-only file system"
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"cannot write {path}: permission denied"
    return f"cannot write {path}: {e.strerror or e}"


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _concerns(path: Path, out: Path) -> bool:
    """Whether ``path`` is ``out``'s folder, ``out``, or inside it or its temp/lock siblings."""
    path = Path(os.path.abspath(path))
    if path == out.parent:
        return True
    try:
        first = path.relative_to(out.parent).parts[0]
    except (ValueError, IndexError):
        return False
    return first == out.name or first.startswith(f".{out.name}.")


def write_failure(e: BaseException, out: str | Path) -> str | None:
    """The one-line message if ``e`` is a failure to write ``out`` (or its temp/lock), else None.

    Disk full, quota and read-only errors are always write errors; permission errors only
    when they name a path beside or under ``out``.
    """
    if not isinstance(e, OSError) or e.errno is None:
        return None
    out = Path(os.path.abspath(out))
    name = getattr(e, "filename", None)
    if e.errno in WRITE_ERRNOS:
        return write_error(e, name or out)
    if e.errno in (errno.EACCES, errno.EPERM) and name and _concerns(Path(name), out):
        return write_error(e, name)
    return None


# ----------------------------------------------------------------------------- replacement


@contextmanager
def safe_output(out: str | Path, kind: str, recognise=None, **marker) -> Iterator[Path]:
    """Write an output of ``kind`` at ``out`` safely; yields the temp path to write to.

    Under the output's lock: refuses anything at ``out`` that is not our output of ``kind``
    (before the caller computes anything), removes stale temporaries, and on success marks
    the temp and renames it into place. On failure ``out`` is untouched and the temp removed.
    ``recognise``: see :func:`check_replaceable`.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        check_replaceable(out, kind, recognise)
        clean_stale_temps(out)
        tmp = temp_path(out)
        _remove(tmp)
        try:
            yield tmp
            if not os.path.lexists(tmp):
                raise OutputError(f"nothing was written for {out}")
            write_marker(tmp, kind, files=checksums.build(tmp, skip=MARKER), **marker)
            if tmp.is_file():  # a file's marker lives beside it: give it the final name
                os.replace(marker_path(tmp), out.with_name(f".{out.name}{MARKER}"))
            check_replaceable(out, kind, recognise)  # still ours (the lock keeps our writers out)
            if os.path.lexists(out):
                old = temp_path(out, "old")
                os.replace(out, old)
                os.replace(tmp, out)
                _remove(old)
            else:
                os.replace(tmp, out)
        finally:
            _remove(tmp)
            _remove(tmp.with_name(f".{tmp.name}{MARKER}"))
