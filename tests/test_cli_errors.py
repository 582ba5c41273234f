"""The command line's error path: every --json error (usage too) is JSON, a closed stdout ends
quietly like a Unix tool, a failing stdout after a complete write says so, a library's
unexpected exception is one line, a Keras backend that cannot load is one line, and unshare
refuses counts and sizes it cannot write before it allocates anything."""

import errno
import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import pytest

from legacy_share.testing import tf1  # first: pytest's process serves tf_keras  # noqa: F401
from tests.file_guard import cli_async, error_line, run_main, save_variables, untouched

from legacy_share import planning  # noqa: E402  pylint: disable=wrong-import-order

from legacy_share import testing  # noqa: E402  pylint: disable=wrong-import-order

NEEDS_KERAS3 = pytest.mark.skipif(not testing.supports_keras3(),
                                  reason="Keras 3 came with TensorFlow 2.16")

LAYER_0 = "rnn/multi_rnn_cell/cell_0/gru_cell"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A shared 2-unit GRU layer (cell_0 only) saved by TF's Saver, with its .meta."""
    folder = tmp_path_factory.mktemp("shared")
    return save_variables(str(folder), {
        f"{LAYER_0}/gates/kernel": np.ones([4, 4], np.float32),
        f"{LAYER_0}/gates/bias": np.ones([4], np.float32),
        f"{LAYER_0}/candidate/kernel": np.ones([4, 2], np.float32),
        f"{LAYER_0}/candidate/bias": np.ones([2], np.float32)})


def _json_error(out):
    document = json.loads(out)
    assert set(document) == {"error", "file", "tensor"}, document
    return document


@pytest.mark.parametrize("command", [
    ["inspect", "{missing}", "--json"],
    ["migrate", "{missing}", "{dst}", "--json"],
    ["verify", "{missing}", "--meta", "{meta}", "--json"],
    ["export", "{missing}", "{dst}", "--keras", "2", "--json"],
    ["export", "{missing}", "{dst}", "--keras", "2", "--json", "--dry-run"],
])
def test_every_command_prints_its_error_as_json(capsys, shared, tmp_path, command):
    missing = str(tmp_path / "nope" / "model.ckpt")
    argv = [a.format(missing=missing, dst=tmp_path / "out" / "m.keras", meta=shared + ".meta")
            for a in command]
    code, out, err = run_main(capsys, *argv)
    document = _json_error(out)
    assert code == 1 and document["file"].startswith(missing) and document["tensor"] is None
    assert error_line(err) == f"legacy-share: error: {document['error']}"
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("command, complaint", [
    (["inspect", "{src}", "--json", "--share-from", "-1"], "argument --share-from"),
    (["inspect", "{src}", "--json", "--units", "3"], "describe a cuDNN buffer"),
    (["migrate", "{src}", "{dst}", "--json", "--strategy", "nope"], "argument --strategy"),
    (["verify", "{src}", "--json"], "--meta"),
    (["export", "{src}", "{dst}", "--js", "--keras", "5"], "argument --keras"),
    (["export", "{src}", "{dst}", "--dense", ",", "--json"], "argument --dense"),
])
def test_a_usage_error_under_json_is_json_too(capsys, shared, tmp_path, command, complaint):
    argv = [a.format(src=shared, dst=tmp_path / "m.keras") for a in command]
    code, out, err = run_main(capsys, *argv)
    document = _json_error(out)
    assert code == 2 and complaint in document["error"] and document["file"] is None
    assert err.splitlines()[-1].endswith(document["error"].split(": ", 1)[1])
    assert os.listdir(tmp_path) == []


def test_a_usage_error_without_json_prints_nothing_on_stdout(capsys, shared):
    code, out, err = run_main(capsys, "inspect", shared, "--share-from", "-1")
    assert code == 2 and out == "" and "argument --share-from" in err


class _FailingStdout:
    """A stdout whose every write fails with OSError(`number`): a closed pipe, a full disk."""

    def __init__(self, number):
        self.number = number

    def write(self, text):
        raise OSError(self.number, os.strerror(self.number)) if self.number != errno.EPIPE \
            else BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    def flush(self):
        pass

    def fileno(self):
        raise OSError("no file descriptor")


def test_a_closed_stdout_ends_the_command_quietly_with_141(capsys, monkeypatch, shared):
    monkeypatch.setattr(sys, "stdout", _FailingStdout(errno.EPIPE))
    code, out, err = run_main(capsys, "inspect", shared)
    assert code == 128 + 13 and out == "" and err == ""


def test_a_closed_stdout_after_a_complete_write_says_the_output_is_complete(
        capsys, monkeypatch, shared, tmp_path):
    dst = str(tmp_path / "out" / "m.ckpt")
    monkeypatch.setattr(sys, "stdout", _FailingStdout(errno.EPIPE))
    with untouched(os.path.dirname(shared)):
        code, _, err = run_main(capsys, "unshare", shared, dst, "--layers", "3")
    assert code == 141
    assert err.strip() == (f"legacy-share: stdout was closed; {dst} had been written in full "
                           f"and is complete."), err
    assert os.path.isfile(dst + ".index")


def test_a_failing_stdout_after_a_complete_write_says_the_output_is_complete(
        capsys, monkeypatch, shared, tmp_path):
    dst = str(tmp_path / "out" / "m.ckpt")
    monkeypatch.setattr(sys, "stdout", _FailingStdout(errno.ENOSPC))
    code, _, err = run_main(capsys, "migrate", shared, dst, "--json")
    line = error_line(err)
    assert code == 1 and "cannot print to stdout: No space left on device" in line
    assert line.endswith(f"{dst} had been written in full and is complete")
    assert os.path.isfile(dst + ".index")


def test_inspect_into_a_closed_pipe_exits_141_without_a_word(shared):
    """A real pipe whose reader is gone before the command prints (`inspect ... | true`)."""
    process = cli_async("inspect", shared)
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141 and err == "", err


def _numpy_fails(*args, **kwargs):  # a NumPy call failing inside NumPy, as a library would
    return np.reshape(np.zeros(3), (2, 2))


def _tensorflow_fails(*args, **kwargs):  # an OpError, which is no OSError
    return tf1.io.read_file("/nonexistent/legacy-share-test").numpy()


@pytest.mark.parametrize("broken, expected, call", [
    (_numpy_fails, "unexpected ValueError in numpy: cannot reshape", "np.reshape"),
    (_tensorflow_fails, "unexpected NotFoundError in tensorflow: ", "tf1.io.read_file"),
])
def test_an_unexpected_library_error_is_one_line_and_json(capsys, monkeypatch, shared, broken,
                                                          expected, call):
    from legacy_share import migration  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(migration, "inspect_checkpoint", broken)
    code, out, err = run_main(capsys, "inspect", shared, "--json")
    line = error_line(err)
    assert code == 1 and expected in line
    assert "--debug" in line and _json_error(out)["file"] == shared
    code, _, err = run_main(capsys, "inspect", shared, "--debug")
    assert code == 1 and "Traceback" in err and call in err


@NEEDS_KERAS3
@pytest.mark.parametrize("backend, why", [
    ("bogus", "Unable to import backend : bogus"),
    pytest.param("torch", "No module named 'torch'", marks=pytest.mark.skipif(
        importlib.util.find_spec("torch") is not None, reason="torch is installed")),
])
def test_a_keras_backend_that_cannot_load_is_one_line(capsys, monkeypatch, shared, tmp_path,
                                                      backend, why):
    """Keras 3 export runs in a fresh process (this one serves tf_keras), which inherits it."""
    monkeypatch.setenv("KERAS_BACKEND", backend)
    code, out, err = run_main(capsys, "export", shared, str(tmp_path / "m.keras"),
                              "--layers", "2", "--json")
    line = error_line(err)
    assert code == 1 and f"KERAS_BACKEND='{backend}'" in line and why in line
    assert "run it with KERAS_BACKEND=tensorflow" in line and _json_error(out)
    assert os.listdir(tmp_path) == []


def test_unshare_refuses_more_tensors_than_it_plans_before_planning(capsys, shared, tmp_path):
    dst = str(tmp_path / "m.ckpt")
    code, out, err = run_main(capsys, "unshare", shared, dst, "--layers", "1000000000")
    line = error_line(err)
    assert code == 1 and out == "" and "would write 4,000,000,000 tensors" in line
    assert f"at most {planning.MAX_UNSHARED_TENSORS:,}" in line and shared in line
    assert os.listdir(tmp_path) == []


def test_unshare_refuses_what_the_disk_cannot_hold_before_writing(capsys, tmp_path):
    src = save_variables(str(tmp_path / "big"), {f"{LAYER_0}/candidate/kernel":
                                                 np.ones([1024, 1024], np.float32)})
    free = shutil.disk_usage(tmp_path).free
    layers = free // (4 << 20) + 2
    if layers > planning.MAX_UNSHARED_TENSORS:
        pytest.skip(f"{free} bytes free: the count bound refuses first")
    dst = str(tmp_path / "out" / "m.ckpt")
    code, _, err = run_main(capsys, "unshare", src, dst, "--layers", str(layers))
    line = error_line(err)
    assert code == 1 and "writes at least" in line and "free; nothing was written" in line
    assert not os.path.exists(tmp_path / "out")
