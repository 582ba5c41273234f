"""Hostile files and odd paths (issue 10), run in this process through `cli.main`.

Each test plants what an attacker or a careless user would, runs the command and expects one
line `legacy-share: error: <file>: ...`, exit 1 (2 for usage), the input untouched and nothing
new at the destination. Cases that abort, hang or allocate without bound on a broken build run
as subprocesses in tests/test_reliability.py (CASES).
"""

import glob
import json
import os
import re
import shutil
import time
import warnings

import numpy as np
import pytest

from tests.file_guard import copy_stack, error_line, run_main, save_variables, snapshot, untouched
from legacy_share import destination, errors, patterns, values

LAYER = "rnn/multi_rnn_cell/cell_{}/gru_cell/gates/kernel"
# A per-layer value that is no cell weight (a layer's running statistic, say): strict compares
# its layers whatever its shape and dtype, where a cell's kernel must be what a graph creates.
LAYER_STATE = "rnn/multi_rnn_cell/cell_{}/running_count"


def save_layers(folder, layers, name=LAYER):
    """A V2 checkpoint (real Saver) with one variable per layer holding `layers[k]` -> prefix."""
    return save_variables(folder, {name.format(layer): np.asarray(value)
                                   for layer, value in enumerate(layers)}, write_meta_graph=False)


def assert_refused(capsys, named, pattern, *argv, code=1):
    """Runs the CLI, expects exit `code` and one error line naming `named` and matching `pattern`."""
    got, _, err = run_main(capsys, *argv)
    assert got == code, err
    line = error_line(err)
    assert named in line, line
    assert re.search(pattern, line), line
    return line


# ------------------------------------------------------------------------------ 1, 2: security


@pytest.mark.parametrize("planted", ["link to an input", "link to another file",
                                     "hard link to an input", "hard link to another file",
                                     "FIFO", "a file of the user"])
def test_a_planted_lock_file_is_refused_and_nothing_it_points_to_is_written(
        v2, tmp_path, capsys, planted):
    src = copy_stack(v2, str(tmp_path / "in"))
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    lock = tmp_path / "out" / ".model.ckpt.legacy-share-lock"
    lock.parent.mkdir()
    data = src + ".data-00000-of-00001"
    if planted == "link to an input":
        os.symlink(data, lock)
    elif planted == "link to another file":
        os.symlink(victim, lock)
    elif planted == "hard link to an input":
        os.link(data, lock)
    elif planted == "hard link to another file":  # holds a pid: only its link count tells
        victim.write_bytes(b"12345")
        os.link(victim, lock)
    elif planted == "FIFO":
        os.mkfifo(lock)
    else:
        lock.write_bytes(b"my notes, not a pid")
    before = snapshot(str(tmp_path))
    assert_refused(capsys, str(lock), r"no lock file of legacy-share|an input of this run",
                   "migrate", src, tmp_path / "out" / "model.ckpt")
    assert snapshot(str(tmp_path)) == before
    assert os.listdir(tmp_path / "out") == [lock.name]


def test_an_input_named_like_the_lock_file_is_never_truncated(v1, tmp_path, capsys):
    src = str(tmp_path / ".model.ckpt.legacy-share-lock")  # a V1 file
    shutil.copy(v1.prefix, src)
    with untouched(str(tmp_path)):
        assert_refused(capsys, src, r"is an input of this run", "migrate", src,
                       tmp_path / "model.ckpt")


@pytest.mark.parametrize("folder", [".model.ckpt.legacy-share-abcd1234",  # today's temp name
                                    ".legacy-share-999999999-abcd1234"])  # the old one
def test_an_input_in_a_folder_named_like_a_dead_runs_temp_is_never_removed(
        v2, tmp_path, capsys, folder):
    src = copy_stack(v2, str(tmp_path / folder))
    with untouched(str(tmp_path / folder)):
        code, _, err = run_main(capsys, "migrate", src, tmp_path / "model.ckpt")
    assert code == 0, err


def test_an_input_that_looks_like_a_dead_runs_temp_output_is_never_removed(v2, tmp_path, capsys):
    """Named and laid out as a dead run's temp folder (`out.index`, `out.data-*`): only its
    being this run's input keeps the sweep away from it."""
    temp = tmp_path / ".model.ckpt.legacy-share-abcd1234"
    temp.mkdir()
    for path in glob.glob(v2.prefix + ".index") + glob.glob(v2.prefix + ".data-*"):
        shutil.copy(path, temp / ("out" + path[len(v2.prefix):]))
    assert len(os.listdir(temp)) >= 2
    src = str(temp / "out")
    with untouched(str(temp)):
        code, _, err = run_main(capsys, "migrate", src, tmp_path / "model.ckpt")
    assert code == 0, err


def test_only_temp_folders_that_are_provably_a_dead_runs_are_removed(v2, tmp_path, capsys):
    dead = tmp_path / ".model.ckpt.legacy-share-dead0000"
    dead.mkdir()
    (dead / "part-00000.index").write_bytes(b"x" * 100)
    (dead / "checkpoint").write_text("half")
    users = tmp_path / ".model.ckpt.legacy-share-users000"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    other_prefix = tmp_path / ".other.ckpt.legacy-share-abcd1234"  # another prefix's temp
    other_prefix.mkdir()
    code, _, err = run_main(capsys, "migrate", v2.prefix, tmp_path / "model.ckpt")
    assert code == 0, err
    assert not dead.exists()
    assert (users / "notes.txt").read_text() == "mine" and other_prefix.exists()


def test_a_live_run_keeps_its_temp_folder_whatever_pid_namespace_it_runs_in(v2, tmp_path, capsys):
    """The claim (an flock), not a pid, tells a live run: a run holding it is never cleaned up."""
    dst = str(tmp_path / "model.ckpt")
    with destination.Output(dst, []) as live:
        line = assert_refused(capsys, dst, r"another legacy-share run \(pid \d+\) is writing",
                              "migrate", v2.prefix, dst)
        assert os.path.isdir(live.temp), line
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------ 7, 8: recursion


def test_a_state_file_naming_itself_is_one_line(v2, tmp_path, capsys):
    src = copy_stack(v2, str(tmp_path / "in"))
    with open(os.path.join(os.path.dirname(src), "checkpoint"), "w", encoding="utf-8") as handle:
        handle.write('model_checkpoint_path: "checkpoint"\n')
    with untouched(str(tmp_path / "in")):
        assert_refused(capsys, "checkpoint", r"names checkpoint, which is a state file",
                       "inspect", os.path.dirname(src))


def test_an_output_prefix_named_checkpoint_is_refused_up_front(v2, tmp_path, capsys):
    dst = tmp_path / "out" / "checkpoint"
    assert_refused(capsys, str(dst), r"`checkpoint` is the name of the state file",
                   "migrate", v2.prefix, dst)
    assert os.listdir(tmp_path) == []


def test_a_deeply_nested_text_meta_graph_is_one_line(v2, tmp_path, capsys):
    meta = tmp_path / "deep.meta"
    nested = 'attr { key: "a" value { func { name: "f" ' * 5000 + "} } }" * 5000
    meta.write_text('graph_def { node { name: "n" op: "NoOp" ' + nested + " } }")
    assert_refused(capsys, str(meta), r"not a MetaGraphDef .*nested too deeply",
                   "verify", v2.prefix, "--meta", meta)


# ------------------------------------------------------------------- 9-12: paths and arguments


@pytest.mark.parametrize("name", [b"bad\xffname.ckpt", b"bad\xff/model.ckpt", b"two\nlines.ckpt"])
def test_a_destination_tensorflow_cannot_carry_is_refused_before_anything_is_written(
        v2, tmp_path, capsys, name):
    dst = os.path.join(str(tmp_path), os.fsdecode(name))
    with untouched(os.path.dirname(v2.prefix)):
        assert_refused(capsys, "", r"not UTF-8|control character", "migrate", v2.prefix, dst)
    assert os.listdir(tmp_path) == []


def test_folders_made_for_a_destination_are_removed_when_a_deeper_one_fails(v2, tmp_path, capsys):
    dst = tmp_path / "a" / "b" / ("c" * 300) / "model.ckpt"
    assert_refused(capsys, "c" * 300, r"cannot create the output folder \(File name too long\)",
                   "migrate", v2.prefix, dst)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("rename", [r"rnn=\1", r"rnn=\g<x>", "(=x"])
def test_a_bad_rename_is_a_usage_error(v2, capsys, rename):
    code, _, err = run_main(capsys, "inspect", v2.prefix, "--rename", rename)
    assert code == 2 and "Traceback" not in err, err
    assert "argument --rename: " in err and rename.split("=")[0] in err, err


def test_a_catastrophic_regex_stops_at_its_time_limit_naming_the_pattern():
    pattern = patterns.compile_pattern("(a|a)+b", "exclude")
    start = time.monotonic()
    with pytest.raises(errors.PlanError, match=r"exclude regex '\(a\|a\)\+b' took more than 2 s"):
        pattern.search("a" * 40 + "_c")
    # Without the limit this match takes hours; the bound leaves room for a loaded machine.
    assert time.monotonic() - start < 30 * patterns.TIME_LIMIT


def test_the_time_limit_holds_for_all_matches_of_a_plan_together(monkeypatch):
    clock = iter(range(0, 1000, 1))  # every reading of the clock: one more second
    monkeypatch.setattr(patterns.time, "monotonic", lambda: float(next(clock)))
    pattern = patterns.compile_pattern(r"cell_(\d+)", "group pattern")
    assert pattern.fullmatch("cell_0")  # 1 s
    assert pattern.fullmatch("cell_1")  # 2 s: the budget is spent
    with pytest.raises(errors.PlanError, match=r"group pattern regex 'cell_\(\\\\d\+\)' took more"):
        pattern.fullmatch("cell_2")


# ------------------------------------------------------------------------------ 13: numbers


@pytest.mark.parametrize("a, b, dtype, expected", [
    ([np.inf, -np.inf, 1.0], [np.inf, -np.inf, 1.0], "float32", 0.0),
    ([np.nan, 1.0], [np.nan, 1.0], "float64", 0.0),
    ([np.nan], [5.0], "float32", float("inf")),
    ([np.inf], [-np.inf], "float64", float("inf")),
    ([1e308], [-1e308], "float64", float("inf")),
    ([2 ** 60], [2 ** 60 + 100], "int64", 100),
    ([-2 ** 63], [2 ** 63 - 1], "int64", 2 ** 64 - 1),
    ([0], [2 ** 64 - 1], "uint64", 2 ** 64 - 1),
    ([True], [False], "bool", float("inf")),
])
def test_max_difference_is_exact_and_defined_for_every_value(a, b, dtype, expected):
    np_dtype = np.dtype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = values.max_difference(np.array(a, np_dtype), np.array(b, np_dtype), dtype)
    assert got == expected and type(got) is type(expected)


def test_strict_takes_identical_layers_with_inf_without_warnings(tmp_path, capsys):
    src = save_layers(str(tmp_path / "in"), [np.array([np.inf, -np.inf, 1], np.float32)] * 2,
                      name=LAYER_STATE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, err = run_main(capsys, "migrate", src, tmp_path / "out" / "m.ckpt",
                                "--strategy", "strict")
    assert code == 0 and err == "", err


def test_strict_compares_int64_layers_exactly(tmp_path, capsys):
    src = save_layers(str(tmp_path / "in"), [np.int64(2 ** 60), np.int64(2 ** 60 + 100)],
                      name=LAYER_STATE)
    assert_refused(capsys, src, r"differ \(max abs difference 100 > tolerance 0.5\)", "migrate",
                   src, tmp_path / "out" / "m.ckpt", "--strategy", "strict", "--tolerance", "0.5")


def test_inspect_reports_what_strict_refuses_and_its_json_is_json(tmp_path, capsys):
    src = save_layers(str(tmp_path / "in"), [np.float32([np.nan, 1]), np.float32([5.0, 1])],
                      name=LAYER_STATE)
    code, out, err = run_main(capsys, "inspect", src, "--json")
    assert code == 0, err

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    document = json.loads(out, parse_constant=refuse)
    assert [g["max_abs_difference"] for g in document["groups"]] == ["inf"]
    code, out, _ = run_main(capsys, "inspect", src)
    assert re.search(r"cell_0\S*\s+0,1\s.*\binf\s", out, re.M), out
    assert_refused(capsys, src, r"max abs difference inf", "migrate", src,
                   tmp_path / "out" / "m.ckpt", "--strategy", "strict")


def test_an_infinite_tolerance_is_a_usage_error(v2, tmp_path, capsys):
    code, _, err = run_main(capsys, "migrate", v2.prefix, tmp_path / "m.ckpt", "--strategy",
                            "strict", "--tolerance", "inf")
    assert code == 2 and "finite number" in err, err


def test_an_output_folder_another_run_makes_first_is_used_and_left_to_it(tmp_path, monkeypatch):
    from legacy_share import destination  # pylint: disable=import-outside-toplevel
    contested = str(tmp_path / "a")
    real_mkdir = os.mkdir

    def racing_mkdir(path, *args):  # another run makes `contested` between our look and mkdir
        if path == contested:
            real_mkdir(path)
        return real_mkdir(path, *args)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    made = destination._make_folders(str(tmp_path / "a" / "b"))  # pylint: disable=protected-access
    assert [path for path, _ in made] == [str(tmp_path / "a" / "b")]
