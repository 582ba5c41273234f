"""Paths TensorFlow would expand, and Git LFS pointers in place of checkpoint files.

TensorFlow reads `*`, `?`, `[` and `\\` in a checkpoint path as a pattern: an input
`ck[12]/model.ckpt` made migrate read `ck1/model.ckpt`. Every command refuses such a path,
input or output, naming it. A Git LFS pointer where a file should be is named as one, with
`git lfs pull`; with only data files as pointers, inspect and dry runs read the index alone.
"""

import os
import shutil

import numpy as np
import pytest

from legacy_share.testing import tf1
from tests.file_guard import cli, error_line, run_main, save_variables, snapshot

from legacy_share import testing  # noqa: E402  pylint: disable=wrong-import-order

NEEDS_KERAS3 = pytest.mark.skipif(not testing.supports_keras3(),
                                  reason="Keras 3 came with TensorFlow 2.16")

LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
               b"size 1846\n")
NAME = "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel"


def _save(folder, value, version="V2", layers=2):
    """A GRU-kernel stack of `layers` layers holding `value`, saved by a real Saver (with its
    .meta) at folder/model.ckpt."""
    os.makedirs(folder, exist_ok=True)
    with tf1.Graph().as_default():
        for layer in range(layers):
            tf1.get_variable(NAME.replace("cell_0", f"cell_{layer}"),
                             initializer=np.full((4, 4), value, np.float32))
        saver = tf1.train.Saver(write_version={"V1": tf1.train.SaverDef.V1,
                                               "V2": tf1.train.SaverDef.V2}[version])
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            return saver.save(session, os.path.join(folder, "model.ckpt"), write_state=False)


@pytest.fixture(scope="module", params=["V1", "V2"])
def lookalikes(request, tmp_path_factory):
    """{char: prefix of a checkpoint under `ck<pattern>`} beside the `ck1` its pattern matches."""
    root = tmp_path_factory.mktemp(f"globs-{request.param}")
    _save(root / "ck1", 1.0, request.param)
    _save(root / "shared", 1.0, request.param, layers=1)
    patterns = {"[": "ck[12]", "*": "ck*", "?": "ck?", "\\": "ck\\1"}
    return root, {c: _save(root / p, 12.0, request.param) for c, p in patterns.items()}


def _commands(src, out):
    return [["inspect", src], ["migrate", src, out], ["migrate", "--dry-run", src, out],
            ["migrate", "--no-share", src, out], ["verify", src, "--meta", src + ".meta"],
            ["unshare", src, out, "--layers", "2"]]


@pytest.mark.parametrize("char", ["[", "*", "?", "\\"])
def test_an_input_tensorflow_would_expand_is_refused_by_every_command(lookalikes, tmp_path,
                                                                      capsys, char):
    root, prefixes = lookalikes
    before = snapshot(str(root))
    for argv in _commands(prefixes[char], str(tmp_path / "out" / "m.ckpt")):
        code, _, err = run_main(capsys, *argv)
        line = error_line(err)
        assert code == 1 and prefixes[char] in line and repr(char) in line, argv
        assert "pattern" in line
    assert not (tmp_path / "out").exists()
    assert snapshot(str(root)) == before


@pytest.mark.parametrize("folder", ["o[1]", "o*", "o?", "o\\x"])
def test_an_output_tensorflow_would_expand_is_refused(lookalikes, tmp_path, capsys, folder):
    root, _ = lookalikes
    src = str(root / "ck1" / "model.ckpt")
    (tmp_path / "o1").mkdir()
    shared = str(root / "shared" / "model.ckpt")
    for argv in _commands(src, str(tmp_path / folder / "m.ckpt"))[1:4] + [
            ["unshare", shared, str(tmp_path / folder / "m.ckpt"), "--layers", "2"]]:
        code, _, err = run_main(capsys, *argv)
        assert code == 1 and "pattern" in error_line(err), argv
    assert sorted(os.listdir(tmp_path)) == ["o1"] and not os.listdir(tmp_path / "o1")


@NEEDS_KERAS3
def test_export_refuses_inputs_and_outputs_tensorflow_would_expand(lookalikes, tmp_path):
    root, prefixes = lookalikes
    run = cli("export", "--dry-run", prefixes["["], str(tmp_path / "m.keras"))
    assert run.returncode == 1 and prefixes["["] in error_line(run.stderr)
    run = cli("export", str(root / "ck1" / "model.ckpt"), str(tmp_path / "o[1]" / "m.keras"))
    assert run.returncode == 1 and "o[1]" in error_line(run.stderr)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ Git LFS pointers

@pytest.fixture()
def pointed(tmp_path):
    """A V2 checkpoint whose data file is a Git LFS pointer -> (prefix, its data file)."""
    prefix = save_variables(str(tmp_path / "ck"), {
        NAME: np.ones((4, 4), np.float32),
        NAME.replace("cell_0", "cell_1"): np.ones((4, 4), np.float32)})
    data = prefix + ".data-00000-of-00001"
    with open(data, "wb") as f:
        f.write(LFS_POINTER)
    return prefix, data


def test_lfs_data_files_leave_inspect_and_dry_runs_working(pointed, tmp_path, capsys):
    prefix, data = pointed
    code, out, err = run_main(capsys, "inspect", prefix)
    assert code == 0 and "1 layer group(s)" in out and "differences not computed" in out
    assert "Git LFS pointer" in err and "git lfs pull" in err and data in err
    code, out, _ = run_main(capsys, "migrate", "--dry-run", prefix, str(tmp_path / "o" / "m"))
    assert code == 0 and "merge" in out
    code, _, err = run_main(capsys, "migrate", prefix, str(tmp_path / "o" / "m"))
    line = [l for l in err.splitlines() if "error:" in l]
    assert code == 1 and len(line) == 1 and data in line[0] and "git lfs pull" in line[0]
    assert "truncated" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("which", [".index", "", ".meta"])
def test_an_lfs_index_v1_file_or_meta_graph_is_named_as_one(tmp_path, capsys, which):
    if which == "":
        prefix = _save(tmp_path / "ck", 1.0, "V1")
    else:
        prefix = save_variables(str(tmp_path / "ck"), {"x": np.ones(3, np.float32)})
    with open(prefix + which, "wb") as f:
        f.write(LFS_POINTER)
    argv = ["inspect", prefix] + (["--meta", prefix + ".meta"] if which == ".meta" else [])
    code, _, err = run_main(capsys, *argv)
    line = error_line(err)
    assert code == 1 and prefix + which in line and "Git LFS pointer" in line
    assert "git lfs pull" in line


def test_a_small_real_file_is_not_taken_for_a_pointer(tmp_path, capsys):
    prefix = save_variables(str(tmp_path / "ck"), {"x": np.ones(3, np.float32)})
    shutil.copy(prefix + ".index", str(tmp_path / "copy.index"))
    code, out, err = run_main(capsys, "inspect", prefix)
    assert code == 0 and "LFS" not in err and "x" in out
