"""The `legacy-share` command line: subcommands, exit codes, one-line errors, JSON output."""

import contextlib
import glob
import io
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from legacy_share import cli, testing
from tests.file_guard import error_line, run_main, save_variables, snapshot
from legacy_share.testing import tf1
from legacy_share.reading import open_checkpoint
from legacy_share.plans import Strategy

KERNEL = "rnn/multi_rnn_cell/cell_{}/gru_cell/gates/kernel"
BIAS = "rnn/multi_rnn_cell/cell_{}/gru_cell/gates/bias"
OLD_KERNEL = "rnn/multi_rnn_cell/cell_{}/gru_cell/gates/weights"  # TF 1.0 name
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    """A 2-layer legacy GRU checkpoint (TF 1.0 kernel names, Adam slots) and a shared graph .meta."""
    folder = str(tmp_path_factory.mktemp("legacy"))
    rng = np.random.RandomState(3)
    variables = {"global_step": np.int64(11), "beta1_power": np.float32(0.9)}
    for layer in range(2):
        variables[OLD_KERNEL.format(layer)] = rng.randn(4, 4).astype(np.float32)
        variables[OLD_KERNEL.format(layer) + "/Adam"] = np.zeros((4, 4), np.float32)
        variables[BIAS.format(layer).replace("bias", "biases")] = np.ones(4, np.float32)
    prefix = save_variables(folder, variables)
    with tf1.Graph().as_default():  # the graph a shared stack builds, without optimizer
        tf1.get_variable(KERNEL.format(0), shape=(4, 4))
        tf1.get_variable(BIAS.format(0), shape=(4,))
        tf1.get_variable("global_step", shape=(), dtype="int64")
        meta = os.path.join(folder, "shared.meta")
        tf1.train.export_meta_graph(meta)
    inputs = (prefix, os.path.join(folder, "checkpoint"), meta)
    before = snapshot(*inputs)
    yield prefix, variables, meta
    assert snapshot(*inputs) == before, "a command changed its input checkpoint"


def test_inspect_prints_groups_and_json(capsys, legacy):
    prefix, _, _ = legacy
    code, out, _ = run_main(capsys, "inspect", prefix)
    assert code == 0
    assert KERNEL.format(0) in out and "0,1" in out and "global_step" in out
    code, out, _ = run_main(capsys, "inspect", prefix + ".index", "--json")
    document = json.loads(out)
    assert code == 0 and document["checkpoint"] == prefix
    keys = {g["key"] for g in document["groups"]}
    assert {KERNEL.format(0), BIAS.format(0), KERNEL.format(0) + "/Adam"} <= keys


def test_inspect_takes_the_same_naming_options_as_migrate(capsys, legacy):
    prefix, _, _ = legacy
    code, out, _ = run_main(capsys, "inspect", prefix, "--json", "--exclude", "/Adam$",
                            "--rename", "multi_rnn_cell=stack")
    keys = {g["key"] for g in json.loads(out)["groups"]}
    assert code == 0
    assert keys == {"rnn/stack/cell_0/gru_cell/gates/kernel", "rnn/stack/cell_0/gru_cell/gates/bias"}


def test_migrate_dry_run_json_writes_nothing(capsys, legacy, tmp_path):
    prefix, _, _ = legacy
    dst = str(tmp_path / "out" / "model.ckpt")
    code, out, _ = run_main(capsys, "migrate", prefix, dst, "--dry-run", "--json",
                            "--drop-optimizer-state")
    assert code == 0
    document = json.loads(out)
    assert document["dry_run"] is True and document["destination"] is None
    names = {step["name"] for step in document["steps"]}
    assert names == {KERNEL.format(0), BIAS.format(0), "global_step"}
    assert {d["name"] for d in document["dropped"]} == {
        "beta1_power", OLD_KERNEL.format(0) + "/Adam", OLD_KERNEL.format(1) + "/Adam"}
    assert os.listdir(tmp_path) == []
    code, out, _ = run_main(capsys, "migrate", prefix, dst, "--dry-run")
    assert code == 0 and "dry run: nothing written" in out and os.listdir(tmp_path) == []


def test_migrate_then_verify_against_the_shared_graph(capsys, legacy, tmp_path):
    prefix, variables, meta = legacy
    dst = str(tmp_path / "model.ckpt")
    code, out, _ = run_main(capsys, "migrate", prefix, dst, "--strategy", "layer:1",
                            "--drop-optimizer-state")
    assert code == 0 and f"wrote {dst}" in out
    got = open_checkpoint(dst)
    assert np.array_equal(got.read(KERNEL.format(0)), variables[OLD_KERNEL.format(1)])
    code, out, _ = run_main(capsys, "verify", dst, "--meta", meta)
    assert code == 0 and out.startswith("OK: 3 variable(s) match")
    code, out, _ = run_main(capsys, "verify", prefix, "--meta", meta, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert KERNEL.format(0) in {s["name"] for s in report["missing"]}


def test_rename_exclude_and_group_options_reach_the_planner(capsys, legacy, tmp_path):
    prefix, _, _ = legacy
    code, out, _ = run_main(capsys, "migrate", prefix, str(tmp_path / "m.ckpt"), "--dry-run",
                            "--json", "--rename", "global_step=step", "--exclude", "Adam$",
                            "--group", r"cell_(\d+)")
    assert code == 0
    steps = {step["name"]: step for step in json.loads(out)["steps"]}
    assert steps["step"]["sources"] == ["global_step"]
    assert steps[OLD_KERNEL.format(1) + "/Adam"]["action"] == "copy"


def test_warnings_reach_the_stderr_of_the_moment(capsys, monkeypatch, legacy, tmp_path):
    """The log handler is made once per process, here while another stream is sys.stderr; it
    must write to the sys.stderr of each later run."""
    prefix, _, _ = legacy
    log = logging.getLogger("legacy_share")
    monkeypatch.setattr(log, "handlers", [h for h in log.handlers
                                          if not getattr(h, "_legacy_share_cli", False)])
    with contextlib.redirect_stderr(io.StringIO()):
        testing.quiet_tensorflow()
    code, _, err = run_main(capsys, "migrate", prefix, str(tmp_path / "m.ckpt"), "--dry-run",
                            "--tolerance", "0.5")
    assert code == 0
    assert "legacy-share: --tolerance applies to --strategy strict only" in err, err


def test_existing_destination_fails_with_one_line_and_force_replaces(capsys, legacy, tmp_path):
    prefix, _, _ = legacy
    dst = str(tmp_path / "model.ckpt")
    assert run_main(capsys, "migrate", prefix, dst)[0] == 0
    code, _, err = run_main(capsys, "migrate", prefix, dst)
    assert code == 1
    assert "a checkpoint exists there" in error_line(err) and "--force" in err
    assert run_main(capsys, "migrate", prefix, dst, "--force", "--strategy", "mean")[0] == 0


def test_strict_failure_is_exit_1_and_writes_nothing(capsys, legacy, tmp_path):
    prefix, _, _ = legacy
    dst = str(tmp_path / "out" / "model.ckpt")
    code, _, err = run_main(capsys, "migrate", prefix, dst, "--strategy", "strict")
    line = error_line(err)
    assert code == 1
    assert f"error: {prefix}: " in line and "layer 0 (" in line and "cell_1" in line
    assert ") differ (max abs difference" in line
    assert not os.path.exists(tmp_path / "out")


def test_missing_checkpoint_is_one_line_and_debug_shows_the_traceback(capsys, tmp_path):
    code, _, err = run_main(capsys, "inspect", str(tmp_path / "nope"))
    assert code == 1
    assert "nope: no checkpoint there" in error_line(err)
    code, _, err = run_main(capsys, "--debug", "inspect", str(tmp_path / "nope"))
    assert code == 1 and "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("legacy-share: error: ")


def test_unshare_writes_every_layer(capsys, legacy, tmp_path):
    prefix, variables, _ = legacy
    shared = str(tmp_path / "shared.ckpt")
    assert run_main(capsys, "migrate", prefix, shared, "--drop-optimizer-state")[0] == 0
    out = str(tmp_path / "unshared.ckpt")
    code, text, _ = run_main(capsys, "unshare", shared, out, "--layers", "3")
    assert code == 0 and f"wrote {out}" in text
    got = open_checkpoint(out)
    for layer in range(3):
        assert np.array_equal(got.read(KERNEL.format(layer)), variables[OLD_KERNEL.format(0)])


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["migrate", "only-src"], ["verify", "ckpt"],
    ["migrate", "a", "b", "--strategy", "median"], ["unshare", "a", "b", "--layers", "0"],
    ["migrate", "a", "b", "--rename", "no-equals-sign"],
])
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage: legacy-share" in capsys.readouterr().err


@pytest.mark.parametrize("text, planned", [(" Layer:0 ", "layer:0"), ("LAYER : 1", "layer:1"),
                                           ("Mean", "mean")])
def test_strategy_text_the_api_accepts_the_cli_accepts(capsys, legacy, tmp_path, text, planned):
    prefix, _, _ = legacy
    code, out, _ = run_main(capsys, "migrate", prefix, str(tmp_path / "m.ckpt"), "--dry-run",
                            "--json", "--strategy", text)
    assert code == 0 and str(Strategy(**json.loads(out)["strategy"])) == planned


def _subprocess(*argv, quiet_env=True):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "legacy_share"] + list(argv), env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_python_dash_m_runs_and_exits_with_the_code(legacy, tmp_path):
    prefix, _, meta = legacy
    result = _subprocess("verify", prefix, "--meta", meta)
    assert result.returncode == 1, result.stderr
    assert "FAILED" in result.stdout
    result = _subprocess("migrate", str(tmp_path / "nope"), str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.rstrip().splitlines()[-1].startswith("legacy-share: error: ")


def test_importing_the_cli_does_not_import_tensorflow():
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, legacy_share.cli; print('tensorflow' in sys.modules)"],
        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, check=False)
    assert probe.stdout.strip() == "False", probe.stderr


def test_errors_print_only_one_line_without_tensorflow_noise(tmp_path):
    result = _subprocess("inspect", str(tmp_path / "nope"))
    assert result.returncode == 1
    error_line(result.stderr)


def test_console_script_is_installed():
    scripts = glob.glob(os.path.join(os.path.dirname(sys.executable), "legacy-share"))
    if not scripts:
        pytest.skip("package not installed in this interpreter's environment")
    result = subprocess.run([scripts[0], "--help"], capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 0 and "inspect" in result.stdout and "unshare" in result.stdout


def test_plan_errors_name_the_checkpoint(capsys, legacy, tmp_path):
    prefix, _, _ = legacy
    code, _, err = run_main(capsys, "migrate", prefix, str(tmp_path / "o" / "m.ckpt"),
                            "--strategy", "layer:5")
    line = error_line(err)
    assert code == 1 and line.startswith(f"legacy-share: error: {prefix}: strategy layer:5 needs")
    assert not os.path.exists(tmp_path / "o")


def test_global_flags_also_work_after_the_subcommand(capsys, tmp_path):
    code, _, err = run_main(capsys, "inspect", str(tmp_path / "nope"), "--debug")
    assert code == 1 and "Traceback" in err


def test_a_negative_tolerance_is_a_usage_error(capsys, legacy, tmp_path):
    prefix, _, _ = legacy
    with pytest.raises(SystemExit) as exited:
        cli.main(["migrate", prefix, str(tmp_path / "o"), "--tolerance", "-1"])
    assert exited.value.code == 2


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A 3-layer TF 0.x GRU gates stack whose layer 0 reads a 2-wide embedding (kernel [6, 8]),
    with Adam slots, and a 2-layer decoder stack whose layer 0 differs too."""
    folder = str(tmp_path_factory.mktemp("embedded"))
    rng = np.random.RandomState(5)
    variables = {"global_step": np.int64(7)}
    for top, layers, depth in (("RNN", 3, 2), ("decoder/RNN", 2, 3)):
        for layer in range(layers):
            name = f"{top}/MultiRNNCell/Cell{layer}/GRUCell/Gates/Linear/Matrix"
            shape = ((depth if layer == 0 else 4) + 4, 8)
            variables[name] = rng.randn(*shape).astype(np.float32)
            variables[name + "/Adam"] = rng.randn(*shape).astype(np.float32)
            variables[name.replace("Matrix", "Bias")] = rng.randn(8).astype(np.float32)
    return save_variables(folder, variables), variables


OLD = "RNN/MultiRNNCell/Cell{}/GRUCell/Gates/Linear/Matrix"


def test_migrate_refuses_every_stack_in_one_line_and_json_names_file_and_tensor(
        capsys, embedded, tmp_path):
    prefix, _ = embedded
    dst = str(tmp_path / "o" / "m.ckpt")
    code, out, err = run_main(capsys, "migrate", prefix, dst)
    line = error_line(err)
    assert code == 1 and out == "" and "cannot share the layers of 2 stacks" in line
    assert "--share-from 1" in line and "--no-share" in line and "/Adam" not in line
    assert "[6, 8]" in line and "[8, 8]" in line and "[7, 8]" in line
    code, out, err = run_main(capsys, "migrate", prefix, dst, "--json")
    document = json.loads(out)
    assert code == 1 and set(document) == {"error", "file", "tensor"}
    assert document["file"] == prefix
    assert document["tensor"] == "decoder/" + OLD.format(0)
    assert error_line(err).endswith(document["error"])
    assert not os.path.exists(tmp_path / "o")


def test_json_error_of_a_missing_checkpoint(capsys, tmp_path):
    missing = str(tmp_path / "nope")
    code, out, err = run_main(capsys, "inspect", missing, "--json")
    document = json.loads(out)
    assert code == 1 and document["file"].startswith(missing) and document["tensor"] is None
    assert "no checkpoint there" in document["error"]
    error_line(err)


@pytest.mark.parametrize("flags,merged", [(["--no-share"], 0), (["--share-from", "1"], 3)])
def test_no_share_and_share_from_write_what_they_say(capsys, embedded, tmp_path, flags, merged):
    prefix, variables = embedded
    dst = str(tmp_path / "m.ckpt")
    code, out, _ = run_main(capsys, "migrate", prefix, dst, *flags)
    assert code == 0 and f"wrote {dst}" in out
    got = open_checkpoint(dst)
    names = {spec.name for spec in got.specs}
    assert sum(1 for line in out.splitlines() if line.startswith("merge ")) == merged
    assert np.array_equal(got.read(KERNEL.format(0)), variables[OLD.format(0)])
    assert np.array_equal(got.read(KERNEL.format(1)), variables[OLD.format(1)])
    assert (KERNEL.format(2) in names) == (not merged)
    assert np.array_equal(got.read(KERNEL.format(1) + "/Adam"), variables[OLD.format(1) + "/Adam"])
    code, out, _ = run_main(capsys, "migrate", prefix, dst, "--dry-run", "--json", *flags)
    assert code == 0 and json.loads(out)["share_from"] == (None if merged == 0 else 1)


def test_unshare_share_from_inverts_it(capsys, embedded, tmp_path):
    prefix, variables = embedded
    shared = str(tmp_path / "s.ckpt")
    code, _, _ = run_main(capsys, "migrate", prefix, shared, "--share-from", "1",
                          "--strategy", "layer:2")
    assert code == 0
    out = str(tmp_path / "u.ckpt")
    code, _, _ = run_main(capsys, "unshare", shared, out, "--layers", "3", "--share-from", "1")
    got = open_checkpoint(out)
    assert code == 0
    for layer, source in ((0, 0), (1, 2), (2, 2)):
        assert np.array_equal(got.read(KERNEL.format(layer)), variables[OLD.format(source)])
    code, _, err = run_main(capsys, "unshare", out, str(tmp_path / "x"), "--layers", "3")
    assert code == 1 and "already per-layer" in error_line(err)


def test_inspect_shows_each_layers_bytes_and_the_route(capsys, embedded):
    prefix, _ = embedded
    code, out, _ = run_main(capsys, "inspect", prefix)
    assert code == 0
    header = out.splitlines()[0]
    assert header.split()[-1] == "ROUTE"
    kernel = next(line for line in out.splitlines() if line.startswith(KERNEL.format(0) + " "))
    assert "[6, 8] | [8, 8] | [8, 8]" in kernel and "192 B | 256 B | 256 B" in kernel
    assert kernel.rstrip().endswith("refused; --share-from 1 or --no-share")
    bias = next(line for line in out.splitlines() if line.startswith(BIAS.format(0) + " "))
    assert bias.rstrip().endswith("merged (default)")
    code, out, _ = run_main(capsys, "inspect", prefix, "--json")
    groups = {g["key"]: g for g in json.loads(out)["groups"]}
    assert groups[KERNEL.format(0)]["bytes"] == [192, 256, 256]
    assert groups[KERNEL.format(0)]["route"].startswith("refused")
    code, out, _ = run_main(capsys, "inspect", prefix, "--json", "--no-share")
    routes = {g["key"]: g["route"] for g in json.loads(out)["groups"]}
    assert routes[KERNEL.format(0)] == "kept per layer (--no-share)"
    assert routes[BIAS.format(0)] == "kept per layer (--no-share); merged by default"


@pytest.mark.parametrize("argv", [
    ["migrate", "a", "b", "--share-from", "-1"], ["migrate", "a", "b", "--share-from", "x"],
    ["migrate", "a", "b", "--share-from", "1", "--no-share"],
    ["unshare", "a", "b", "--layers", "2", "--no-share"],
])
def test_share_options_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2


def test_meta_reads_the_block_cells_settings_from_the_old_graph(capsys, embedded, tmp_path):
    """A real graph with the LSTMBlockCell op (still in today's TF as a raw op), parsed not run."""
    prefix, _ = embedded
    meta = str(tmp_path / "old.meta")
    with tf1.Graph().as_default():
        x, state = tf1.zeros([2, 3]), tf1.zeros([2, 4])
        weights, bias = tf1.zeros([7, 16]), tf1.zeros([16])
        with tf1.variable_scope("rnn/LSTMBlockCell"):
            tf1.raw_ops.LSTMBlockCell(x=x, cs_prev=state, h_prev=state, w=weights,
                                      wci=tf1.zeros([4]), wcf=tf1.zeros([4]), wco=tf1.zeros([4]),
                                      b=bias, forget_bias=0.5, cell_clip=3.0, use_peephole=False)
        tf1.train.export_meta_graph(meta)
    code, out, _ = run_main(capsys, "migrate", prefix, str(tmp_path / "m"), "--no-share",
                            "--dry-run", "--meta", meta)
    note = next(line for line in out.splitlines()
                if line.startswith("note: ") and "LSTMBlockCell" in line)
    assert code == 0 and meta in note and "LSTMBlockCell op in rnn/LSTMBlockCell" in note
    assert "cell_clip=3.0" in note and "forget_bias=0.5" in note and "use_peephole=False" in note
    assert "LSTMCell(n, cell_clip=3.0, forget_bias=0.5)" in note
    bad = tmp_path / "bad.meta"
    bad.write_bytes(b"\xff\x00 not a proto")
    code, out, err = run_main(capsys, "migrate", prefix, str(tmp_path / "m"), "--no-share",
                              "--dry-run", "--json", "--meta", str(bad))
    assert code == 1 and "not a MetaGraphDef" in error_line(err)
    assert json.loads(out)["file"] == str(bad)
