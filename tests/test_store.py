"""The results folder: a corrupt file is skipped by every reader with one warning naming it; a write that fails
(a full disk) leaves nothing behind, loses no run and stops the suite with one line; the temporary files of a
killed write are cleaned on resume; long or unsafe names give safe file names."""
import errno
import io
import json
import os
import zipfile

import numpy as np
import pytest

from pinnbench import store
from pinnbench.cli import main
from pinnbench.errors import PinnbenchError
from pinnbench.execution.backend import InProcessBackend
from pinnbench.runner import RunSpec, run_suite
from pinnbench.store import UnreadableRunWarning, load_results, load_runs, read_run, run_filename


def _npz(path, **arrays):
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _corrupt_member(good, bad):
    """A copy of a valid run file with bytes flipped inside one compressed member (CRC and zlib fail)."""
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("trajectory.loss.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 2, start + min(info.compress_size, 40)):
        data[i] ^= 0xFF
    bad.write_bytes(bytes(data))


@pytest.fixture
def folder_with_corrupt_files(tmp_path, tiny_protocol):
    out = tmp_path / "results"
    (good,) = run_suite([RunSpec("laplace2d", "adam", 1)], tiny_protocol, out, backend=InProcessBackend()).written
    manifest = json.loads(str(np.load(good)["manifest"]))
    arrays = {k: v for k, v in np.load(good).items()}
    (out / "empty.npz").write_bytes(b"")
    (out / "garbage.npz").write_bytes(b"not a zip file")
    _corrupt_member(good, out / "zlib.npz")
    _npz(out / "list-manifest.npz", **{**arrays, "manifest": np.array("[1, 2]")})
    _npz(out / "no-key.npz", **{**arrays, "manifest": np.array(json.dumps({k: v for k, v in manifest.items()
                                                                           if k != "run_key"}))})
    _npz(out / "ragged.npz", **{**arrays, "trajectory.loss": arrays["trajectory.loss"][:-1]})
    return out, good


BAD = ("empty.npz", "garbage.npz", "zlib.npz", "list-manifest.npz", "no-key.npz", "ragged.npz")


def test_every_reader_skips_a_corrupt_file_with_one_warning(folder_with_corrupt_files, tiny_protocol):
    out, good = folder_with_corrupt_files
    with pytest.warns(UnreadableRunWarning) as caught:
        runs = load_runs(out)
        frame = load_results(out)
        resumed = run_suite([RunSpec("laplace2d", "adam", 1), RunSpec("laplace2d", "adam", 2)], tiny_protocol,
                            out, backend=InProcessBackend())
        load_runs(out)
    assert list(runs.file) == [str(good)] and set(frame.file) == {str(good)}
    assert len(resumed.skipped) == 1 and len(resumed.written) == 1
    messages = [str(w.message) for w in caught]
    assert len(messages) == len(BAD)  # one per file, whichever reader met it first
    for name in BAD:
        assert sum(name in m for m in messages) == 1
    with pytest.raises(PinnbenchError, match="is unreadable"):
        read_run(out / "ragged.npz")


def test_report_command_warns_once_per_corrupt_file(folder_with_corrupt_files, tmp_path, capsys):
    out, _ = folder_with_corrupt_files
    assert main(["report", str(out), "--out", str(tmp_path / "report"), "--no-figures", "--format", "md"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pinnbench: warning")]
    assert len(warned) == len(BAD) and all(any(name in line for line in warned) for name in BAD)


def _fail_after_some_bytes(monkeypatch, calls, folder):
    """From the second write into ``folder`` on, the disk is full (after a few bytes are written)."""
    original = np.savez_compressed

    def full_disk(handle, **arrays):
        if str(handle.name).startswith(str(folder)):
            calls.append(1)
            if len(calls) >= 2:
                handle.write(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")
        return original(handle, **arrays)

    monkeypatch.setattr(store.np, "savez_compressed", full_disk)


def test_a_full_disk_stops_the_suite_with_one_line_and_loses_nothing(tmp_path, tiny_protocol, monkeypatch, capsys):
    out = tmp_path / "o"
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    _fail_after_some_bytes(monkeypatch, calls := [], out)
    specs = [RunSpec("laplace2d", "adam", seed) for seed in (1, 2, 3)]
    with pytest.raises(PinnbenchError, match="No space left on device; it is saved in") as raised:
        run_suite(specs, tiny_protocol, out, backend=InProcessBackend())
    assert "\n" not in str(raised.value)
    assert len(store.run_files(out)) == 1 and not list(out.glob(".*.tmp"))
    (saved,) = store.run_files(tmp_path / "tmp" / "pinnbench-unsaved")
    assert read_run(saved).manifest["seed"] == 2 and not list((out / ".locks").glob("*.lock"))
    monkeypatch.undo()
    resumed = run_suite(specs, tiny_protocol, out, backend=InProcessBackend())
    assert len(resumed.skipped) == 1 and len(resumed.written) == 2
    _fail_after_some_bytes(monkeypatch, calls := [], out)  # the CLI: one line, exit 2
    code = main(["run", "-p", "laplace2d", "-o", "adam", "--seeds", "4", "5", "--steps", "2", "--out", str(out),
                 "--in-process", "--no-report"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "No space left on device" in errors[0]


def test_stale_temporary_files_are_removed_on_resume(tmp_path, tiny_protocol):
    out = tmp_path / "o"
    out.mkdir()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    killed = out / f".0123456789ab.{store._HOST}.{dead}.tmp"
    older_format = out / f".laplace2d__adam__s1__0123456789ab.npz.{dead}.tmp"
    live = out / f".0123456789ab.{store._HOST}.{os.getppid()}.tmp"
    for path in (killed, older_format, live):
        path.write_bytes(b"half a run")
    run_suite([RunSpec("laplace2d", "adam", 1)], tiny_protocol, out, backend=InProcessBackend())
    assert not killed.exists() and not older_format.exists() and live.exists()


def test_file_names_are_safe_and_short():
    manifest = {"problem": "../../x", "optimizer": "adam[" + ",".join(f"k{i}={i}" for i in range(80)) + "]",
                "seed": 2**63 - 1, "run_key": "0123456789abcdef"}
    name = run_filename(manifest)
    assert "/" not in name and not name.startswith(".") and len(name) <= 230 and name.endswith("0123456789ab.npz")
    assert run_filename({**manifest, "problem": "/abs/path"}).startswith("_abs_path__")
