"""`export`'s output door (legacy_share/file_output.py) for each of its three formats: the input
is never the destination, --force replaces only what an export wrote, a claim keeps two runs
apart, an interrupt leaves the old output or the new one, a full disk is one line.

In-process runs use pytest's tf_keras process with `--keras 2`; the signal and file-size runs
are fresh `legacy-share export` processes (Keras 3).
"""

import errno
import glob
import os
import shutil
import signal
import subprocess
import time

import pytest

from legacy_share import cli, errors, file_output
from legacy_share.testing import tf, tf1  # noqa: F401  first: pytest's process serves tf_keras
from tests import export_cases
from tests.file_guard import Run, error_line, snapshot, tmpfs, untouched

import legacy_share.keras  # noqa: E402,F401  pylint: disable=wrong-import-order
from legacy_share.keras import exporting  # noqa: E402  pylint: disable=wrong-import-order
from legacy_share.keras import model as _model  # noqa: E402  pylint: disable=wrong-import-order

from legacy_share import testing  # noqa: E402  pylint: disable=wrong-import-order

pytestmark = pytest.mark.skipif(not testing.supports_keras3(),
                                reason="exports with Keras 3, which came with TensorFlow 2.16")

FORMATS = {"keras": ["m.keras"], "weights": ["m.model.json", "m.weights.h5"],
           "saved_model": ["m"]}
LEFTOVERS = ".*legacy-share*"


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """A 2-layer GRU (TF's Saver) -> its prefix. Read-only: tests that could harm it copy it."""
    prefix = str(tmp_path_factory.mktemp("door") / "in" / "model.ckpt")
    os.makedirs(os.path.dirname(prefix))
    export_cases.save_case(prefix, cell="gru", depth=4)
    return prefix


def _export(capsys, *argv):
    code = cli.main(["export", *[str(a) for a in argv], "--keras", "2"])
    out, err = capsys.readouterr()
    return code, out, err


def _dst(folder, fmt):
    return os.path.join(str(folder), FORMATS[fmt][-1] if fmt != "weights" else "m.weights.h5")


def _runs(src, dst):
    """Loads the export of `src` at `dst` as a user would (tf_keras) and runs it: raises if it
    does not load."""
    # pylint: disable=protected-access
    inputs, lengths = exporting._proof.probe_inputs(exporting.plan(src))
    return exporting._run_saved(dst, exporting.destination_format(dst), _model.keras_module(2),
                                2, inputs, lengths)


# ------------------------------------------------------------------- the input is never the output


@pytest.mark.parametrize("where", ["its folder", "a folder above", "dot inside"])
def test_export_onto_the_inputs_folder_is_refused_and_the_input_stays(capsys, src, tmp_path,
                                                                      monkeypatch, where):
    """Before: `export CK CK --force` deleted the input checkpoint and said "wrote"."""
    folder = tmp_path / "above" / "ckpt"
    shutil.copytree(os.path.dirname(src), folder)
    dst = {"its folder": folder, "a folder above": tmp_path / "above", "dot inside": "."}[where]
    monkeypatch.chdir(folder)
    with untouched(str(tmp_path)):
        code, _, err = _export(capsys, folder / "model.ckpt", dst, "--force")
    assert code == 1, err
    assert "holds the input" in error_line(err) and "never replaced" in err


# ------------------------------------------------------------------- --force replaces exports only


def _folder_with_notes(path):
    os.makedirs(path)
    with open(os.path.join(path, "notes.txt"), "w", encoding="utf-8") as handle:
        handle.write("my thesis")


def _saved_model_with_extra(path):
    os.makedirs(os.path.join(path, "variables"))
    for name in ("saved_model.pb", "variables/variables.index", "variables/mine.txt"):
        with open(os.path.join(path, name), "wb") as handle:
            handle.write(b"x")


def _file(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def _link(path, target_folder):
    os.makedirs(target_folder)
    _file(os.path.join(target_folder, "elsewhere"), b"theirs")
    os.symlink(os.path.join(target_folder, "elsewhere"), path)


FOREIGN = {  # case -> (destination name, make it, what the line says)
    "a folder of notes": ("m", _folder_with_notes, "holds 'notes.txt', which no SavedModel"),
    "a SavedModel with a file of the user": ("m", _saved_model_with_extra,
                                             "holds variables/mine.txt"),
    "a folder named m.keras": ("m.keras", _folder_with_notes, "is a folder"),
    "a file that is no .keras": ("m.keras", lambda p: _file(p, b"keep me"), "is not a .keras"),
    "weights that are no HDF5": ("m.weights.h5", lambda p: _file(p, b"keep me"),
                                 "is not an HDF5 file"),
    "an architecture that is no Keras JSON": (
        "m.weights.h5", lambda p: _file(p[:-len(".weights.h5")] + ".model.json", b'{"a": 1}'),
        "is not a Keras model architecture"),
    "a symbolic link": ("m.keras", lambda p: _link(p, os.path.join(os.path.dirname(p), "o")),
                        "is a symbolic link"),
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_force_replaces_only_what_an_export_writes(capsys, src, tmp_path, case):
    """Before: --force onto a folder that is no SavedModel deleted it and all in it."""
    name, make, says = FOREIGN[case]
    dst = str(tmp_path / name)
    make(dst)
    with untouched(str(tmp_path)):
        code, _, err = _export(capsys, src, dst, "--force")
    assert code == 1, err
    line = error_line(err)
    assert says in line and "--force replaces only what an export writes" in line, line


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_force_replaces_an_earlier_export(capsys, src, tmp_path, fmt):
    dst = _dst(tmp_path, fmt)
    assert _export(capsys, src, dst)[0] == 0
    before = snapshot(str(tmp_path))
    code, _, err = _export(capsys, src, dst, "--force")
    assert code == 0, err
    after = snapshot(str(tmp_path))
    assert set(after) == set(before) and all(after[p] != before[p] for p in after)
    assert sorted(os.listdir(tmp_path)) == FORMATS[fmt]
    _runs(src, dst)


def test_tilde_is_expanded_and_an_empty_destination_is_refused(capsys, src, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    code, _, err = _export(capsys, src, "~/m.keras")
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]
    with untouched(str(tmp_path)):
        code, _, err = _export(capsys, src, "", "--force")
    assert code == 1 and "the destination is empty" in error_line(err)


# ------------------------------------------------------------------- signals: the old output or the new


def _interrupt_after_first_move(monkeypatch, exchange):
    """Sends SIGINT right after the first rename of the commit (the exchange, when `exchange`;
    else the old output moved aside, renameat2 made unavailable)."""
    real_commit = file_output.FileOutput.commit
    real_replace = os.replace
    real_exchange = file_output._rename_exchange  # pylint: disable=protected-access
    sent = []

    def once():
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    def replace(source, target):
        real_replace(source, target)
        once()

    def exchanged(first, second):
        if not exchange:
            raise OSError(errno.ENOSYS, "renameat2 is missing")
        real_exchange(first, second)
        once()

    def commit(self):
        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", replace)
            patch.setattr(file_output, "_rename_exchange", exchanged)
            real_commit(self)

    monkeypatch.setattr(file_output.FileOutput, "commit", commit)
    return sent


@pytest.mark.parametrize("fmt, exchange", [("keras", True), ("weights", True),
                                           ("saved_model", True), ("saved_model", False)])
def test_ctrl_c_while_an_export_is_moved_into_place_finishes_the_move(capsys, src, tmp_path,
                                                                      monkeypatch, fmt,
                                                                      exchange):
    """Before: SIGINT between moving the old SavedModel aside and the new one in lost both
    (saying "the destination was left as it was"); a pair was left half new."""
    dst = _dst(tmp_path, fmt)
    assert _export(capsys, src, dst)[0] == 0
    old = snapshot(str(tmp_path))
    sent = _interrupt_after_first_move(monkeypatch, exchange)
    code, _, err = _export(capsys, src, dst, "--force")
    monkeypatch.undo()
    assert sent and code == 130, err
    assert err.strip() == (f"legacy-share: interrupted; {dst} had been written in full and is "
                           f"complete.")
    new = snapshot(str(tmp_path))
    assert set(new) == set(old) and all(new[p] != old[p] for p in new)  # all new, none old
    assert sorted(os.listdir(tmp_path)) == FORMATS[fmt]
    _runs(src, dst)


def test_at_every_rename_of_a_pair_the_weights_lie_beside_their_own_architecture(
        capsys, src, tmp_path, monkeypatch):
    """What SIGKILL could leave between the renames of a `.weights.h5 --force`: before, the new
    `.model.json` beside the old weights. Now: the old pair, no weights, or the new pair."""
    dst = tmp_path / "m.weights.h5"
    assert _export(capsys, src, dst)[0] == 0
    old = {os.stat(tmp_path / name).st_ino for name in FORMATS["weights"]}
    states = []
    real_replace = os.replace

    def replace(source, target):
        real_replace(source, target)
        present = [n for n in FORMATS["weights"] if os.path.exists(tmp_path / n)]
        states.append((present, {os.stat(tmp_path / n).st_ino in old for n in present}))

    real_commit = file_output.FileOutput.commit

    def commit(self):
        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", replace)
            real_commit(self)

    monkeypatch.setattr(file_output.FileOutput, "commit", commit)
    assert _export(capsys, src, dst, "--force")[0] == 0
    assert len(states) == 4, states  # two aside, two in
    for present, olds in states:
        assert "m.weights.h5" not in present or len(present) == 2 and len(olds) == 1, states


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_swallowed_by_a_finalizer_still_stops_the_export(capsys, src, tmp_path,
                                                                      monkeypatch):
    """Before (--keras 2): SIGINT raised inside a __del__ was swallowed ("Exception ignored
    in"), and the export went on, wrote and exited 0."""
    class Finalized:  # pylint: disable=too-few-public-methods
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):  # the handler runs here, inside __del__: Python ignores it
                pass

    real = exporting._run_saved  # pylint: disable=protected-access

    def run_saved(*args):
        Finalized()
        return real(*args)

    monkeypatch.setattr(exporting, "_run_saved", run_saved)
    code, _, err = _export(capsys, src, tmp_path / "new" / "m.keras")
    assert code == 130, err
    assert err.strip().splitlines()[-1] == ("legacy-share: interrupted; the destination was "
                                            "left as it was.")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------- two runs, one destination


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_second_export_while_one_writes_is_refused(src, tmp_path, monkeypatch, fmt, force):
    """Before: no claim: two exports into one .weights.h5 both succeeded (a pair that did not
    load); without --force the second silently replaced the first."""
    dst = _dst(tmp_path, fmt)
    seen = []
    real = exporting._run_saved  # pylint: disable=protected-access

    def run_saved(*args):  # the first run has written and proves: a second one starts
        if not seen:
            try:
                exporting.export(src, dst, keras=2, force=force, prove=False)
                seen.append("the second one wrote")
            except errors.DestinationExistsError as exc:
                seen.append(str(exc))
        return real(*args)

    monkeypatch.setattr(exporting, "_run_saved", run_saved)
    exporting.export(src, dst, keras=2, force=force)
    assert len(seen) == 1 and "another legacy-share run" in seen[0], seen
    assert sorted(os.listdir(tmp_path)) == FORMATS[fmt]
    _runs(src, dst)


def test_what_a_killed_export_left_is_removed_by_the_next(capsys, src, tmp_path):
    """Before: a SIGKILLed export left `.m.keras.XXXXXXXX.legacy-share-tmp` (a whole model) that
    no later run removed. Today's temp folders and the old naming both go; a folder of the
    same name that is not a run's stays."""
    dst = tmp_path / "m.keras"
    for name in (".m.keras.legacy-share-abcd1234", ".m.keras.x1y2z3w4.legacy-share-tmp"):
        os.makedirs(tmp_path / name)
        _file(str(tmp_path / name / "m.keras"), b"a model")
    os.makedirs(tmp_path / ".m.keras.legacy-share-keep")  # not 8 characters: no temp folder
    os.makedirs(tmp_path / ".m.keras.legacy-share-users123")
    _file(str(tmp_path / ".m.keras.legacy-share-users123" / "thesis.txt"), b"mine")
    _file(str(tmp_path / ".m.keras.legacy-share-lock"), b"99999")
    code, _, err = _export(capsys, src, dst)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == [".m.keras.legacy-share-keep",
                                            ".m.keras.legacy-share-users123", "m.keras"]


def test_a_failed_export_removes_the_folders_it_made(capsys, src, tmp_path):
    """Before: a name too long for the temp folder next to it left the folders made for it."""
    code, _, err = _export(capsys, src, tmp_path / "a" / "b" / ("m" * 240 + ".keras"))
    assert code == 1 and "give a shorter one" in error_line(err)
    code, _, err = _export(capsys, src, tmp_path / "a" / "b" / "m.keras", "--tolerance", "0")
    assert code == 1 and "not written" in error_line(err)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only, else the test is skipped) -> its path."""
    with tmpfs(str(tmp_path / "small disk"), "size=256k") as path:
        yield path


@pytest.fixture(scope="module")
def big_src(tmp_path_factory):
    """A GRU with 400 units (5.8 MB of weights) -> its prefix."""
    prefix = str(tmp_path_factory.mktemp("big") / "model.ckpt")
    export_cases.save_case(prefix, cell="gru", units=400)
    return prefix


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_an_export_into_a_full_disk_is_one_line_and_leaves_nothing(big_src, small_disk, fmt):
    """Before: a SavedModel printed a ResourceExhaustedError traceback; a .weights.h5 ended in
    SIGSEGV inside HDF5. The free space is checked before anything is written."""
    dst = _dst(os.path.join(small_disk, "out"), fmt)
    with untouched(os.path.dirname(big_src)):
        code, stderr, _ = Run("export", big_src, dst).finish()
    assert code == 1, stderr
    line = error_line(stderr)
    assert "No space left on device" in line and "nothing was written" in line, line
    assert os.listdir(small_disk) == []


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_write_error_while_exporting_is_one_line_and_leaves_nothing(src, tmp_path, fmt):
    """Files may not grow past 16 KiB (RLIMIT_FSIZE: EFBIG, as a disk that fills meanwhile):
    the free-space check passes and the first failed write stops the run. Needs no root."""
    dst = _dst(tmp_path / "out", fmt)
    code = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))\n"
            f"from legacy_share import cli\nsys.exit(cli.main(['export', {src!r}, {dst!r}]))")
    code, stderr, _ = Run(code=code).finish()
    assert code == 1, stderr
    line = error_line(stderr)
    assert "cannot write the export: File too large" in line, line
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------- real signals, real processes


def _temp_folders(folder):
    return glob.glob(os.path.join(glob.escape(folder), ".*.legacy-share-*"))


def _signal_once(argv, folder, number, delay):
    """Starts `legacy-share ARGV`, sends `number` `delay` s after its temp folder appears in
    `folder` -> (exit code, stderr, whether the signal came before the run ended)."""
    run = Run(*argv)
    while run.process.poll() is None and not _temp_folders(folder):
        time.sleep(0.002)
    time.sleep(delay)
    landed = run.process.poll() is None
    if landed:
        run.process.send_signal(number)
    code, stderr, _ = run.finish()
    return code, stderr, landed


@pytest.fixture(scope="module")
def signalled(src, tmp_path_factory):
    """Each format, SIGKILL, SIGINT and SIGTERM at 0, 0.3 and 0.6 s after the temp folder
    appears, while replacing an older export with --force; a run after the SIGKILL
    -> [dict(fmt, signal, delay, code, stderr, landed, outcome, leftovers, recovery)]."""
    root = str(tmp_path_factory.mktemp("signals"))
    rows = []
    for fmt in FORMATS:
        reference = os.path.join(root, fmt, "old")
        exporting.export(src, _dst(reference, fmt), keras=2)  # the old output: a tf_keras export
        for number, delay in ((signal.SIGKILL, 0.0), (signal.SIGINT, 0.3),
                              (signal.SIGTERM, 0.6)):
            landed = False
            while not landed:  # a faster machine ends the run sooner: try again sooner
                folder = os.path.join(root, fmt, f"{number.name}-{delay}")
                shutil.copytree(reference, folder)
                old = snapshot(*[os.path.join(folder, n) for n in FORMATS[fmt]])
                dst = _dst(folder, fmt)
                code, stderr, landed = _signal_once(["export", src, dst, "--force"], folder,
                                                    number, delay)
                if not landed and delay < 0.05:
                    break
                delay = delay if landed else delay / 3
            row = dict(fmt=fmt, signal=number, delay=delay, code=code, stderr=stderr,
                       landed=landed, outcome=_outcome(folder, old, fmt),
                       leftovers=sorted(glob.glob(os.path.join(glob.escape(folder),
                                                               LEFTOVERS))))
            if number == signal.SIGKILL:
                again, _, _ = Run("export", src, dst, "--force").finish()
                row["recovery"] = (again, glob.glob(os.path.join(glob.escape(folder),
                                                                 LEFTOVERS)))
            rows.append(row)
    return rows


def _outcome(folder, old, fmt):
    """"old" (untouched), "new" (the format's files, none of the old ones), "none" (no
    loadable output: no weights or SavedModel), or what is wrong."""
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    after = snapshot(*[os.path.join(folder, name) for name in names])
    if after == old:
        return "old"
    if names == FORMATS[fmt] and not set(after.items()) & set(old.items()):
        return "new"
    if fmt == "weights" and "m.weights.h5" not in names:
        return "none"
    return f"MIXED: {names}"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_signal_while_exporting_leaves_the_old_output_or_the_new(signalled, fmt):
    """After SIGINT / SIGTERM the run cleans up itself (130 / 143, one line saying whether the
    output is complete); after SIGKILL the next run removes what it left and succeeds."""
    mine = [row for row in signalled if row["fmt"] == fmt]
    assert sum(row["landed"] for row in mine) >= 2, "most signals must land before the end"
    for row in mine:
        where = f"{row['signal'].name} at +{row['delay']} s: {row}"
        if row["signal"] == signal.SIGKILL:
            assert row["outcome"] in ("old", "new", "none"), where
            assert row["recovery"] == (0, []), where
            continue
        assert row["outcome"] in ("old", "new"), where
        assert not row["leftovers"], where
        # Landed in Python's own exit after the output was complete: killed by the signal, as
        # scripts/fault_kill accepts for migrate.
        teardown = row["code"] == -row["signal"] and row["outcome"] == "new"
        assert row["code"] in (0, 128 + row["signal"]) or teardown, where
        lines = [line for line in row["stderr"].splitlines() if line.strip()]
        assert "Traceback" not in row["stderr"] and len(lines) <= 1, where
        if row["code"] and not teardown:
            assert ("left as it was" in lines[0]) == (row["outcome"] == "old"), where


# ------------------------------------------------------------------- files outside the output


def test_no_command_creates_a_keras_config_where_the_user_has_none(src, tmp_path):
    """Before: `migrate` and `inspect` (which need no Keras) and `export` created
    ~/.keras/keras.json by importing Keras. A user's own keras.json stays as it is."""
    import sys  # pylint: disable=import-outside-toplevel
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_HOME", "TF_USE_LEGACY_KERAS")}
    env.update(HOME=str(home), PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
    runs = [["inspect", src], ["migrate", src, tmp_path / "out" / "m.ckpt", "--no-share"],
            ["export", src, tmp_path / "out" / "m.keras"],
            ["export", src, tmp_path / "out" / "m2.keras", "--keras", "2"]]
    for argv in runs:
        done = subprocess.run([sys.executable, "-m", "legacy_share", *map(str, argv)], env=env,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, (argv, done.stderr)
        assert os.listdir(home) == [], (argv, os.listdir(home))
    (home / ".keras").mkdir()
    (home / ".keras" / "keras.json").write_text('{"floatx": "float32"}')
    with untouched(str(home)):
        done = subprocess.run([sys.executable, "-m", "legacy_share", "inspect", src], env=env,
                              capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
