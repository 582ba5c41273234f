"""One way in (legacy_share.opening), the state file (state_file) and the naming rules kept once."""

import ast
import os
import pathlib
import re

import numpy as np
import pytest

import legacy_share
from legacy_share import cudnn, migration, opening, reading, restoring, state_file, verifying
from legacy_share.testing import tf, tf1
from legacy_share.errors import PlanError
from legacy_share.testing.legacy_graphs import save_legacy_stack
from tests.cudnn_cases import save_cudnn_checkpoint
from tests.file_guard import save_variables

import legacy_share.keras  # noqa: E402  pylint: disable=wrong-import-order

PACKAGE = pathlib.Path(legacy_share.__file__).parent


@pytest.fixture(name="opened_paths")
def _opened_paths(monkeypatch):
    """The paths `reading.open_checkpoint` is called with, through `opening` and not."""
    calls = []

    def spy(path):
        calls.append(os.fspath(path))
        return reading.open_checkpoint(path)
    monkeypatch.setattr(opening, "open_checkpoint", spy)
    return calls


def test_every_command_and_api_function_opens_the_checkpoint_through_opening(tmp_path,
                                                                               opened_paths):
    prefix = save_legacy_stack(str(tmp_path / "src"), cell="gru", layers=2, num_units=3,
                               write_version="V2", train_steps=1).prefix
    meta = prefix + ".meta"
    migration.inspect_checkpoint(prefix)
    migration.plan_checkpoint(prefix)
    out = str(tmp_path / "out" / "model.ckpt")
    migration.migrate(prefix, out)
    verifying.verify_checkpoint(prefix, meta)
    migration.unshare(out, str(tmp_path / "back" / "model.ckpt"), 2)
    legacy_share.keras.plan(prefix)
    restoring.planned_checkpoint(prefix)
    assert opened_paths == [prefix, prefix, prefix, prefix, out, prefix, prefix]


def test_the_slim_init_fn_is_planned_through_opening(tmp_path, opened_paths):
    slim = pytest.importorskip("legacy_share.slim")
    prefix = save_legacy_stack(str(tmp_path / "src"), cell="gru", layers=2, num_units=3,
                               write_version="V2", train_steps=1).prefix
    with tf1.Graph().as_default():
        variable = tf1.get_variable("softmax_b", shape=[11])
        slim.assign_from_legacy_checkpoint_fn(prefix, [variable])
    assert opened_paths == [prefix]


def test_a_planning_error_from_export_names_the_checkpoint_file_and_tensor(tmp_path):
    # Before opening.naming_errors, export's plan kept the prefix in the message but dropped
    # `file` and `tensor`, which migrate's plan kept (and `--json` reports).
    prefix = save_variables(str(tmp_path / "src"), {
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel": np.ones((5, 4), np.float32),
        "rnn/multi_rnn_cell/cell_0/gru_cell/gates/weights": np.ones((5, 4), np.float32)})
    errors = []
    for plan in (migration.plan_checkpoint, legacy_share.keras.plan):
        with pytest.raises(PlanError) as info:
            plan(prefix)
        errors.append(info.value)
    for error in errors:
        assert str(error).startswith(f"{prefix}: ") and error.file == prefix
    assert errors[0].tensor is not None and errors[1].tensor == errors[0].tensor
    assert str(errors[1]) == str(errors[0])


def test_a_cudnn_gru_refused_by_migrate_names_the_checkpoint(tmp_path):
    # Export named the checkpoint in cuDNN errors; migrate's view of the buffer did not.
    prefix, _ = save_cudnn_checkpoint(str(tmp_path), cudnn.Layout("gru", 1, 3, 3), canonical=True)
    with pytest.raises(PlanError, match=r"reset_after=True") as info:
        migration.plan_checkpoint(prefix)
    assert str(info.value).startswith(f"{prefix}: ") and info.value.file == prefix


@pytest.mark.parametrize("name", ['model.ckpt', 'we"ird.ckpt', "back\\slash.ckpt",
                                  "new\nline.ckpt", "caf\u00e9.ckpt"])
def test_the_state_file_text_is_what_tensorflow_reads_back(tmp_path, name):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / state_file.STATE_FILE).write_text(state_file.state_text(name), encoding="utf-8")
    state = tf.train.get_checkpoint_state(str(folder))
    assert state.model_checkpoint_path == os.path.join(str(folder), name)
    assert list(state.all_model_checkpoint_paths) == [os.path.join(str(folder), name)]
    ours = state_file.read_state(str(folder))
    assert ours.model_checkpoint_path == name


def test_migrate_writes_a_state_file_tensorflow_finds_for_an_odd_name(tmp_path):
    prefix = save_legacy_stack(str(tmp_path / "src"), cell="gru", layers=2, num_units=3,
                               write_version="V2", train_steps=1).prefix
    dst = str(tmp_path / "out" / 'we"ird caf\u00e9.ckpt')
    migration.migrate(prefix, dst)
    assert tf.train.latest_checkpoint(str(tmp_path / "out")) == dst


def _module_sources():
    return {path: path.read_text() for path in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("rule", [
    r"beta\\d_power",                       # optimizer globals
    r'"\|"\.join\(\w*OPTIMIZER_SLOT_NAMES',  # the optimizer-slot regex
    r'LAYER_SCOPE_FORMAT\.format\(r"',       # the layer-scope regexes
    r"W_\[FIO\]_diag",                       # the TF <= 1.1 leaf regex
    r"__version__\.split",                   # the TensorFlow version parse
    r'"1", "true", "True"',                  # TF_USE_LEGACY_KERAS read as on
    r'"[^"\n]*stack_bidirectional_rnn[/"]',  # a cuDNN model's output paths
    r"model_checkpoint_path: ",              # the state file written by hand
    r"CheckpointState\(\)",                  # the state file parsed
    r"MetaGraphDef\(\)",                     # the .meta parsed
])
def test_each_naming_rule_is_written_in_one_module(rule):
    holders = [path.name for path, source in _module_sources().items()
               if "testing" not in path.parts and re.search(rule, source)]
    assert len(holders) <= 1, holders


def test_only_opening_opens_a_checkpoint_for_planning():
    users = []
    for path, source in _module_sources().items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and any(a.name == "open_checkpoint"
                                                       for a in node.names):
                users.append(path.name)
    assert sorted(users) == ["opening.py", "writing.py"]  # writing reads its output back


def test_cli_is_small_and_its_functions_short():
    source = (PACKAGE / "cli.py").read_text()
    assert len(source.splitlines()) <= 450
    long = [node.name for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno >= 60]
    assert not long
