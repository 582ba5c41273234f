"""Faults of the environment: a full disk, a read-only one, and signals at any moment.

Full-disk cases run twice: on tiny tmpfs mounts (needs root, else skipped) and, without root,
in a child whose files may not grow past a limit (RLIMIT_FSIZE), which reaches every stage.
Signals are sent to real subprocesses (scripts/fault_kill), or raised in this process at the
moment the output is moved into place.
"""

import os
import re
import signal
import time

import numpy as np
import pytest

from tests.file_guard import (Run, tmpfs, assert_is_migration, cli, error_line, expected_checksums,
                              load_fault_kill, run_main, tensor_checksums, untouched)
from legacy_share import destination, errors, migration, writing
from legacy_share.testing import tf1


# ------------------------------------------------------------------- environment faults


def test_disk_full_through_the_command_line_is_one_line_and_leaves_nothing(v2, tmp_path):
    with tmpfs(str(tmp_path / "small disk"), "size=8k") as mount:
        os.makedirs(os.path.join(mount, "keep"))
        with untouched(os.path.dirname(v2.prefix)):
            result = cli("migrate", v2.prefix, os.path.join(mount, "out", "model.ckpt"))
        assert result.returncode == 1
        line = error_line(result.stderr)
        assert mount in line and "No space left on device" in line, line
        assert "function_node" not in line
        assert os.listdir(mount) == ["keep"]


@pytest.mark.parametrize("size_kib, fails_in", [
    (4, "cannot write"), (64, "cannot write"), (128, "cannot write"), (184, "cannot write"),
    (192, "cannot write"), (196, None), (200, None)])
def test_disk_full_at_any_stage_raises_and_leaves_nothing(v2, tmp_path, monkeypatch, size_kib,
                                                          fails_in):
    """One shard per tensor (24 shards of a page or two each): the disk fills while saving
    shards, or (196, 200 KiB: the page count decides) merging them or not at all. The state
    file's stage is reached by test_a_full_disk_at_every_stage_is_one_line_and_leaves_nothing."""
    monkeypatch.setattr(writing, "BATCH_BYTES", 1)
    with tmpfs(str(tmp_path / "small disk"), f"size={size_kib}k") as mount:
        dst = os.path.join(mount, "out", "model.ckpt")
        try:
            with untouched(os.path.dirname(v2.prefix)):
                migration.migrate(v2.prefix, dst)
        except errors.Error as exc:
            message = str(exc)
            assert "\n" not in message and mount in message, message
            assert "No space left on device" in message, message
            assert os.listdir(mount) == []
            assert fails_in is None or message.startswith(fails_in), message
            print(f"{size_kib} KiB: {message.split(mount)[0]}...")
        else:
            assert fails_in is None, f"{size_kib} KiB must not be enough"
            assert tensor_checksums(dst) == expected_checksums(v2.prefix, "first")
            print(f"{size_kib} KiB: enough")


def test_read_only_destination_is_a_clean_error(capsys, v2, tmp_path):
    with tmpfs(str(tmp_path / "ro"), "ro,size=1m") as mount:
        with untouched(os.path.dirname(v2.prefix)):
            direct = run_main(capsys, "migrate", v2.prefix, os.path.join(mount, "model.ckpt"))
            nested = run_main(capsys, "migrate", v2.prefix,
                              os.path.join(mount, "sub", "model.ckpt"))
        for code, _, err in (direct, nested):
            assert code == 1
            line = error_line(err)
            assert mount in line and "Read-only file system" in line, line
        assert os.listdir(mount) == []


# ------------------------------------------------------------------- signals


SIGNALS = (signal.SIGKILL, signal.SIGINT, signal.SIGTERM)


@pytest.fixture(scope="module")
def signalled(tmp_path_factory):
    """A small run of scripts/fault_kill: each signal at 3 moments over one ~25 MB migration
    (one input and one pair of reference runs for all) -> (rows, violations)."""
    fault_kill = load_fault_kill()
    start = time.monotonic()
    rows, violations = fault_kill.fault_kill(str(tmp_path_factory.mktemp("signals")), 25, 3,
                                             recover_each=False, log=lambda line: None,
                                             signals=SIGNALS)
    print("\n" + fault_kill.HEADER)
    for row in rows:
        print(fault_kill.format_row(row))
    print(f"{time.monotonic() - start:.0f} s")
    return rows, violations


@pytest.mark.parametrize("number", SIGNALS)
def test_a_signal_at_three_moments_leaves_nothing_or_a_complete_checkpoint(signalled, number):
    """After SIGINT and SIGTERM the run itself must have removed its temp folder and lock (exit
    130 / 143); after any signal the next run must clean up and succeed (checked after each
    signal's last moment, and after every SIGKILL)."""
    rows, violations = signalled
    name = signal.Signals(number).name
    assert not [v for v in violations if f"({name})" in v], violations
    mine = [row for row in rows if row["signal"] == name[3:]]
    assert len(mine) == 3 and sum(row["happened"] == "signalled" for row in mine) >= 2, mine
    assert mine[-1]["cleaned"] == "yes", mine  # the next run cleans up after this signal
    assert not [v for v in violations if "(SIG" not in v], violations


def _wait_for_tensorflow_import(process, timeout=60):
    """Returns once `process` has mapped TensorFlow's library (its import has begun) or ended."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{process.pid}/maps", encoding="utf-8", errors="replace") as maps:
                if "tensorflow" in maps.read():
                    return
        except OSError:
            return
        time.sleep(0.01)


def test_ctrl_c_while_tensorflow_is_imported_is_one_line_and_exit_130(v2):
    """At several moments of TensorFlow's import (it takes seconds; Python is up in 0.1 s).
    Raised inside the import, the KeyboardInterrupt was swallowed (exit 0), became an
    ImportError (exit 1) or left a crash at exit (-11, -2), depending on the moment."""
    seen = {}
    for delay in (0.0, 0.3, 0.6, 0.9):
        run = Run("inspect", v2.prefix)
        _wait_for_tensorflow_import(run.process)  # a loaded machine starts Python slowly
        time.sleep(delay)
        if run.process.poll() is not None:  # done before the signal: nothing to interrupt
            run.finish()
            continue
        run.process.send_signal(signal.SIGINT)
        code, stderr, _ = run.finish()
        seen[delay] = (code, stderr.strip())
    wrong = {delay: result for delay, result in seen.items()
             if result != (130, "legacy-share: interrupted; nothing was written.")}
    assert seen and not wrong, wrong


@pytest.mark.parametrize("moment", ["the first data file", "the index"])
def test_ctrl_c_while_the_output_is_moved_into_place_finishes_the_move_and_says_so(
        v2, tmp_path, capsys, monkeypatch, moment):
    real_replace = os.replace

    def replace(source, target):
        real_replace(source, target)
        if target.endswith(".index" if moment == "the index" else ".data-00000-of-00001"):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(destination.os, "replace", replace)
    dst = str(tmp_path / "out" / "model.ckpt")
    code, _, err = run_main(capsys, "migrate", v2.prefix, dst)
    monkeypatch.undo()
    assert code == 130
    assert err.strip() == (f"legacy-share: interrupted; {dst} had been written in full and is "
                           f"complete.")
    assert_is_migration(v2.prefix, dst, "first")
    assert sorted(os.listdir(tmp_path / "out")) == [
        "checkpoint", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]


# ------------------------------------------------------------------- full disk, without root


def _limited(limit, argv, batch_bytes=None):
    """`cli.main(ARGV)` in a child whose files may not grow past `limit` bytes (RLIMIT_FSIZE:
    writes beyond fail with EFBIG, as on a full disk) -> Run."""
    code = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
            f"import legacy_share\nfrom legacy_share import cli\nlegacy_share.prepare_tensorflow()\n"
            f"from legacy_share import writing\n"
            + (f"writing.BATCH_BYTES = {batch_bytes}\n" if batch_bytes else "")
            + f"sys.exit(cli.main({[str(a) for a in argv]!r}))")
    return Run(code=code)


@pytest.fixture(scope="module")
def two_tensors(tmp_path_factory):
    """V2 checkpoints (real Saver): two float32 tensors of 600 bytes; one int64 scalar; 30."""
    folder = str(tmp_path_factory.mktemp("two tensors"))
    prefixes = []
    for name, variables in (("two", {"a": np.ones(150, np.float32),
                                     "b": np.zeros(150, np.float32)}),
                            ("one", {"g": np.int64(7)}),
                            ("many", {f"v{k:02d}": np.int64(k) for k in range(30)})):
        prefixes.append(os.path.join(folder, name, "model.ckpt"))
        with tf1.Graph().as_default():
            for key, value in variables.items():
                tf1.get_variable(key, initializer=value)
            with tf1.Session() as session:
                session.run(tf1.global_variables_initializer())
                tf1.train.Saver().save(session, prefixes[-1], write_meta_graph=False)
    return prefixes


# stage -> (source, file size limit, output name, what the error line says)
STAGES = {
    "saving a shard": (0, 400, "model.ckpt", r"cannot write .*File too large"),
    "merging the shards": (2, 300, "model.ckpt", r"cannot merge the shards .*File too large"),
    "writing the state file": (1, 400, "m" * 220, r"m{220}: File too large; .*nothing was left"),
}


def test_a_full_disk_at_every_stage_is_one_line_and_leaves_nothing(two_tensors, tmp_path):
    """Each stage must fail (the limit is what the stage before needs): the last one in
    particular, the state file, once every checkpoint file was written. Needs no root."""
    runs = {}
    for stage, (source, limit, name, _) in STAGES.items():
        dst = tmp_path / stage / "out" / name
        (tmp_path / stage).mkdir()
        runs[stage] = (dst, _limited(limit, ["migrate", two_tensors[source], dst], batch_bytes=1))
    for stage, (dst, run) in runs.items():
        code, stderr, _ = run.finish()
        assert code == 1, (stage, stderr)
        line = error_line(stderr)
        assert re.search(STAGES[stage][3], line), (stage, line)
        assert os.listdir(tmp_path / stage) == [], stage


def test_bytes_changed_between_writing_and_reading_back_are_found(v2, tmp_path, monkeypatch):
    """The read-back compares the fingerprint of what was meant with that of what was read."""
    real_tensor = writing._tensor  # pylint: disable=protected-access

    def corrupted(value, dtype):
        if value.dtype == np.float32 and value.size:
            value = value.copy()
            value.reshape(-1)[0] += 1
        return real_tensor(value, dtype)

    monkeypatch.setattr(writing, "_tensor", corrupted)
    dst = tmp_path / "out" / "model.ckpt"
    with pytest.raises(errors.VerificationError, match=r"reads back different bytes"):
        migration.migrate(v2.prefix, str(dst))
    assert os.listdir(tmp_path) == []


def test_a_forced_run_replaces_data_files_left_without_an_index(v2, tmp_path, capsys):
    """What SIGKILL leaves in the moment between the old index and the new one (found by
    scripts/fault_kill): the next --force run must take it over."""
    dst = str(tmp_path / "model.ckpt")
    with open(dst + ".data-00000-of-00001", "wb") as handle:
        handle.write(b"old data" * 1000)
    code, _, err = run_main(capsys, "migrate", v2.prefix, dst, "--force")
    assert code == 0, err
    assert_is_migration(v2.prefix, dst, "first")
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]


def test_a_run_that_ended_before_its_signal_was_due_still_reports_its_exit_code():
    """The signal tests poll() the child before signalling; a child that ended meanwhile is
    already reaped then (CI: ChildProcessError from the second wait)."""
    run = Run(code="import sys; sys.stderr.write('done'); sys.exit(3)")
    while run.process.poll() is None:
        time.sleep(0.01)
    code, stderr, _ = run.finish()
    assert (code, stderr) == (3, "done")
