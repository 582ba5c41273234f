"""Reading, writing, verifying and restoring real checkpoints written by tf.compat.v1.train.Saver."""

import glob
import os
import re
import shutil

import numpy as np
import pytest

from legacy_share import errors
from legacy_share import migration
from legacy_share import writing
from legacy_share import values
from legacy_share.testing import tf, tf1
from legacy_share.planning import Plan, Step, Strategy
from legacy_share.reading import open_checkpoint
from legacy_share.restoring import restore_shared
from legacy_share.verifying import read_meta_graph_variables, verify_checkpoint
from tests.file_guard import snapshot

GRU = "rnn/multi_rnn_cell/cell_{}/gru_cell"
KERNEL = GRU + "/gates/kernel"
BIAS = GRU + "/gates/bias"
CAND_KERNEL = GRU + "/candidate/kernel"
CAND_BIAS = GRU + "/candidate/bias"
LAYERS = 3


def _values(with_bfloat16):
    """Name -> value of the test checkpoints: 3 GRU layers (kernels differ, biases agree) + odd dtypes."""
    rng = np.random.RandomState(7)
    values = {}
    for layer in range(LAYERS):
        values[KERNEL.format(layer)] = rng.randn(6, 6).astype(np.float32)
        values[BIAS.format(layer)] = np.ones(6, np.float32)
        values[CAND_KERNEL.format(layer)] = rng.randn(6, 3).astype(np.float16)
        if with_bfloat16:
            values[CAND_BIAS.format(layer)] = (rng.randn(3) * 3).astype(tf.bfloat16.as_numpy_dtype)
    values["global_step"] = np.int64(2 ** 40 + 3)
    values["vocab"] = np.array([b"a", b"b\x00c", b"\xff" * 3], dtype=object)
    values["embedding"] = rng.randn(6, 3).astype(np.float32)
    return values


def _save(folder, version=2, sharded=False):
    """Saves `_values` with Saver under `folder/model.ckpt-7` (+ .meta) -> (prefix, values)."""
    values = _values(with_bfloat16=version == 2)
    with tf1.Graph().as_default():
        for index, (name, value) in enumerate(sorted(values.items())):
            device = "/cpu:1" if sharded and index % 2 else "/cpu:0"
            with tf1.device(device):
                if name == "embedding":
                    tf1.get_variable(name, initializer=_slice_initializer(value),
                                     shape=value.shape, partitioner=tf1.fixed_size_partitioner(2))
                elif value.dtype == object:
                    tf1.Variable(value, name=name)
                else:
                    tf1.get_variable(name, initializer=tf.constant(value))
        write_version = tf1.train.SaverDef.V1 if version == 1 else tf1.train.SaverDef.V2
        saver = tf1.train.Saver(write_version=write_version, sharded=sharded)
        config = tf1.ConfigProto(device_count={"CPU": 2})
        with tf1.Session(config=config) as session:
            session.run(tf1.global_variables_initializer())
            prefix = saver.save(session, os.path.join(folder, "model.ckpt"), global_step=7)
    return prefix, values


def _slice_initializer(full):
    def initializer(shape, dtype=None, partition_info=None):
        start = partition_info.var_offset[0] if partition_info is not None else 0
        return tf.constant(full[start:start + shape[0]], dtype=dtype)
    return initializer


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """{"v1", "v2", "sharded"} -> (prefix, values), written once for this module; read-only."""
    out = {}
    for key, version, sharded in (("v1", 1, False), ("v2", 2, False), ("sharded", 2, True)):
        folder = tmp_path_factory.mktemp(key)
        out[key] = _save(str(folder), version, sharded)
    return out


def _input_files(prefix):
    return sorted(p for p in glob.glob(prefix + "*") if not p.endswith(".meta"))


def _assert_bitwise(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    if expected.dtype == object:
        assert list(actual.reshape(-1)) == list(expected.reshape(-1))
    else:
        assert actual.dtype == expected.dtype
        assert actual.tobytes() == expected.tobytes()


def _read_all(prefix):
    ckpt = open_checkpoint(prefix)
    return {spec.name: ckpt.read(spec.name) for spec in ckpt.specs}


# ------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("key", ["v1", "v2", "sharded"])
def test_open_reads_every_tensor_with_full_shapes_and_dtypes(ckpts, key):
    prefix, values = ckpts[key]
    ckpt = open_checkpoint(prefix)
    assert ckpt.prefix == prefix
    assert ckpt.version == (1 if key == "v1" else 2)
    specs = {spec.name: spec for spec in ckpt.specs}
    assert sorted(specs) == sorted(values)
    assert specs["embedding"].shape == (6, 3)  # partitioned: the full variable
    assert specs["vocab"].dtype == "string"
    assert specs[CAND_KERNEL.format(0)].dtype == "float16"
    for name, value in values.items():
        _assert_bitwise(ckpt.read(name), value)


def test_sharded_fixture_really_has_two_data_files(ckpts):
    prefix, _ = ckpts["sharded"]
    assert len(glob.glob(prefix + ".data-*")) == 2
    assert len(open_checkpoint(prefix).files) == 3


@pytest.mark.parametrize("suffix", ["", ".index", ".data-00000-of-00001", ".meta", "FOLDER",
                                    "STATE"])
def test_open_resolves_every_path_form_to_the_prefix(ckpts, suffix):
    prefix, _ = ckpts["v2"]
    path = {"FOLDER": os.path.dirname(prefix),
            "STATE": os.path.join(os.path.dirname(prefix), "checkpoint")}.get(suffix, prefix + suffix)
    ckpt = open_checkpoint(path)
    assert os.path.realpath(ckpt.prefix) == os.path.realpath(prefix)
    assert len(ckpt.specs) == len(ckpts["v2"][1])


def test_open_v1_folder_uses_latest_checkpoint(ckpts):
    prefix, _ = ckpts["v1"]
    ckpt = open_checkpoint(os.path.dirname(prefix))
    assert ckpt.version == 1 and os.path.realpath(ckpt.prefix) == os.path.realpath(prefix)


def test_open_folder_whose_state_file_names_a_moved_checkpoint(ckpts, tmp_path):
    prefix, _ = ckpts["v2"]
    moved = tmp_path / "moved"
    shutil.copytree(os.path.dirname(prefix), moved)
    _write(str(moved / "checkpoint"), b'model_checkpoint_path: "/gone/away/model.ckpt-7"\n')
    ckpt = open_checkpoint(str(moved))
    assert ckpt.prefix == str(moved / "model.ckpt-7")


def test_open_relative_folder_whose_state_file_names_a_subfolder(ckpts, tmp_path, monkeypatch):
    prefix, _ = ckpts["v2"]
    shutil.copytree(os.path.dirname(prefix), tmp_path / "runs" / "sub")
    _write(str(tmp_path / "runs" / "checkpoint"), b'model_checkpoint_path: "sub/model.ckpt-7"\n')
    monkeypatch.chdir(tmp_path)
    ckpt = open_checkpoint("runs")
    assert os.path.realpath(ckpt.prefix) == str(tmp_path / "runs" / "sub" / "model.ckpt-7")


def test_metadata_without_data_files_and_read_names_the_missing_file(ckpts, tmp_path):
    prefix, values = ckpts["sharded"]
    shutil.copy(prefix + ".index", tmp_path / "model.ckpt-7.index")
    ckpt = open_checkpoint(str(tmp_path / "model.ckpt-7"))
    assert sorted(s.name for s in ckpt.specs) == sorted(values)
    with pytest.raises(errors.CheckpointError,
                       match=r"cannot read .*data file .*model\.ckpt-7\.data-0000[01]-of-00002 is missing"):
        ckpt.read("global_step")
    plan = migration.plan_checkpoint(str(tmp_path / "model.ckpt-7"))  # a dry run needs no data
    assert KERNEL.format(0) in [step.name for step in plan.steps]
    inspection = migration.inspect_checkpoint(str(tmp_path / "model.ckpt-7"))
    assert not inspection.values_read
    assert all(g.max_abs_difference is None for g in inspection.groups)
    assert "data files missing" in inspection.format_table()
    with pytest.raises(errors.CheckpointError, match=r"data file .* is missing"):
        migration.migrate(str(tmp_path / "model.ckpt-7"), str(tmp_path / "out" / "model.ckpt"))
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("make, pattern", [
    (lambda d: os.path.join(d, "nope"), r"nope: no checkpoint there .*give a checkpoint prefix"),
    (lambda d: d, r"no `checkpoint` state file names a checkpoint here; give a checkpoint prefix"),
    (lambda d: _write(os.path.join(d, "junk"), b"x" * 64),
     r"junk: not a readable V1 checkpoint file .*give the prefix"),
    (lambda d: _write(os.path.join(d, "junk.index"), b"x" * 64),
     r"junk\.index: not a readable V2 index .*give the prefix"),
    (lambda d: _write(os.path.join(d, "checkpoint"), b'model_checkpoint_path: "gone"\n'),
     r"checkpoint: names .*gone, which does not exist; give the checkpoint prefix"),
])
def test_open_errors_are_one_line_with_the_path_and_what_to_do(tmp_path, make, pattern):
    path = make(str(tmp_path))
    with pytest.raises(errors.CheckpointError, match=pattern) as info:
        open_checkpoint(path)
    assert "\n" not in str(info.value)


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return path


# ------------------------------------------------------------------------------- migrating


@pytest.mark.parametrize("key", ["v1", "v2", "sharded"])
@pytest.mark.parametrize("strategy", ["first", "layer:2", "mean"])
def test_migrate_writes_merged_layers_and_carries_the_rest_bit_for_bit(ckpts, tmp_path, key,
                                                                        strategy):
    prefix, values = ckpts[key]
    before = snapshot(*_input_files(prefix))
    dst = str(tmp_path / "out" / "model.ckpt")
    plan = migration.migrate(prefix, dst, strategy=strategy)
    assert snapshot(*_input_files(prefix)) == before
    assert sorted(os.listdir(tmp_path / "out")) == [
        "checkpoint", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    assert tf.train.latest_checkpoint(str(tmp_path / "out")) == dst
    got = _read_all(dst)
    assert sorted(got) == sorted(step.name for step in plan.steps)
    assert not any("cell_1" in name or "cell_2" in name for name in got)
    for template in (KERNEL, BIAS, CAND_KERNEL) + ((CAND_BIAS,) if key != "v1" else ()):
        layers = [values[template.format(k)] for k in range(LAYERS)]
        if strategy == "first":
            expected = layers[0]
        elif strategy == "layer:2":
            expected = layers[2]
        else:
            expected = (sum(layer.astype(np.float64) for layer in layers) / LAYERS).astype(
                layers[0].dtype)
        _assert_bitwise(got[template.format(0)], expected)
    for name in ("global_step", "vocab", "embedding"):
        _assert_bitwise(got[name], values[name])


def test_strict_merges_equal_layers_and_names_the_first_that_differ(ckpts, tmp_path):
    prefix, values = ckpts["v2"]
    dst = str(tmp_path / "out" / "model.ckpt")
    only_biases = migration.migrate(prefix, dst, strategy="strict",
                                    excludes=[r"/kernel$", r"candidate/bias$"])
    assert BIAS.format(0) in [s.name for s in only_biases.steps if s.action == "merge"]
    _assert_bitwise(_read_all(dst)[BIAS.format(0)], values[BIAS.format(0)])

    difference = np.max(np.abs(values[KERNEL.format(0)].astype(np.float64)
                               - values[KERNEL.format(1)]))
    dst2 = str(tmp_path / "out2" / "model.ckpt")
    with pytest.raises(errors.LayersDifferError,
                       match=rf"^{re.escape(prefix)}: {KERNEL.format(0)}: layer 0 "
                             rf"\({KERNEL.format(0)}\) and layer 1 \({KERNEL.format(1)}\) differ "
                             rf"\(max abs difference {difference:.6g} > tolerance 0\); use "
                             rf"--strategy first or mean"):
        migration.migrate(prefix, dst2, strategy="strict", excludes=[r"candidate"])
    assert not os.path.exists(tmp_path / "out2")


def test_strict_within_tolerance_passes(ckpts, tmp_path):
    prefix, values = ckpts["v2"]
    dst = str(tmp_path / "model.ckpt")
    migration.migrate(prefix, dst, strategy="strict", tolerance=100.0)
    _assert_bitwise(_read_all(dst)[KERNEL.format(0)], values[KERNEL.format(0)])


@pytest.mark.parametrize("folder", ["new_folder/", "EXISTING"])
def test_a_folder_as_destination_is_refused_and_nothing_written(ckpts, tmp_path, folder):
    prefix, _ = ckpts["v2"]
    dst = os.path.join(str(tmp_path), "" if folder == "EXISTING" else folder)
    with pytest.raises(errors.OutputError, match=r"folder; give an output prefix such as "):
        migration.migrate(prefix, dst)
    assert os.listdir(tmp_path) == []


def test_existing_destination_needs_force_and_force_replaces_it(ckpts, tmp_path):
    prefix, values = ckpts["v2"]
    dst = str(tmp_path / "model.ckpt")
    migration.migrate(prefix, dst, strategy="layer:1")
    stale = dst + ".data-00001-of-00002"
    _write(stale, b"old shard")
    before = snapshot(*glob.glob(dst + "*"))
    with pytest.raises(errors.DestinationExistsError,
                       match=r"model\.ckpt: a checkpoint exists there .*--force to replace it"):
        migration.migrate(prefix, dst, strategy="first")
    assert snapshot(*glob.glob(dst + "*")) == before
    migration.migrate(prefix, dst, strategy="first", force=True)
    assert not os.path.exists(stale)
    _assert_bitwise(_read_all(dst)[KERNEL.format(0)], values[KERNEL.format(0)])


def test_failed_force_keeps_the_old_output_and_leaves_no_temp(ckpts, tmp_path):
    prefix, _ = ckpts["v2"]
    dst = str(tmp_path / "model.ckpt")
    migration.migrate(prefix, dst, strategy="first")
    before = snapshot(*glob.glob(str(tmp_path / "*")))
    with pytest.raises(errors.LayersDifferError):
        migration.migrate(prefix, dst, strategy="strict", force=True)
    assert snapshot(*glob.glob(str(tmp_path / "*"))) == before
    assert not glob.glob(str(tmp_path / ".legacy-share-*"))


def test_failure_after_shards_were_written_leaves_nothing(ckpts, tmp_path, monkeypatch):
    prefix, _ = ckpts["v2"]
    monkeypatch.setattr(writing, "BATCH_BYTES", 1)  # one shard per tensor
    reader = open_checkpoint(prefix)
    plan = Plan((Step("a", (), "int64", "copy", ("global_step",)),
                 Step("b", (6, 6), "float32", "rename", (KERNEL.format(1),)),
                 Step("c", (2,), "int64", "merge", ("global_step", "global_step"), (0, 1))),
                (), Strategy("mean"))
    dst = str(tmp_path / "deep" / "er" / "model.ckpt")
    with pytest.raises(errors.PlanError, match=r"c: cannot average layers of dtype int64"):
        writing.execute(plan, reader, dst)
    assert os.listdir(tmp_path) == []


def test_writer_concatenates_shards_per_layer(ckpts, tmp_path):
    prefix, values = ckpts["v2"]
    reader = open_checkpoint(prefix)
    sources = (KERNEL.format(0), KERNEL.format(1), KERNEL.format(2), KERNEL.format(0))
    step = Step("w", (12, 6), "float32", "merge", sources, (0, 1), shards=2)
    dst = str(tmp_path / "model.ckpt")
    writing.execute(Plan((step,), (), Strategy("layer", 1)), reader, dst)
    expected = np.concatenate([values[KERNEL.format(2)], values[KERNEL.format(0)]], axis=0)
    _assert_bitwise(_read_all(dst)["w"], expected)


def test_batched_writer_refuses_nothing_to_save_and_writes_nothing(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = str(tmp_path / "out.ckpt")
    with pytest.raises(errors.PlanError, match=r"no tensor to save at .*out\.ckpt"):
        writing.save_batched([], str(tmp), out)
    assert sorted(os.listdir(tmp_path)) == ["tmp"] and os.listdir(tmp) == []


def test_writer_rejects_a_plan_that_does_not_fit_the_checkpoint(ckpts, tmp_path):
    prefix, _ = ckpts["v2"]
    reader = open_checkpoint(prefix)
    plan = Plan((Step("w", (4, 6), "float32", "copy", (KERNEL.format(0),)),), (), Strategy("first"))
    with pytest.raises(errors.IncompatibleShapeError,
                       match=r"w: the plan expects shape \[4, 6\] but .*cell_0.* gives \[6, 6\]"):
        writing.execute(plan, reader, str(tmp_path / "model.ckpt"))
    assert os.listdir(tmp_path) == []


def test_writer_names_a_dtype_that_does_not_fit_the_checkpoint(ckpts, tmp_path):
    prefix, _ = ckpts["v2"]
    plan = Plan((Step("w", (6, 6), "float64", "copy", (KERNEL.format(0),)),), (), Strategy("first"))
    with pytest.raises(errors.IncompatibleDtypeError,
                       match=r"w: the plan expects dtype float64 but .*cell_0.* holds float32"):
        writing.execute(plan, open_checkpoint(prefix), str(tmp_path / "model.ckpt"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("step", [
    dict(action="merge", sources=("a", "b"), layers=()),
    dict(action="merge", sources=("a", "b", "c"), layers=(0, 1)),
    dict(action="copy", sources=("a", "b"), layers=()),
    dict(action="copy", sources=("a",), layers=(0,)),
    dict(action="rename", sources=("a",), layers=(), shards=0),
    dict(action="sum", sources=("a",), layers=()),
])
def test_a_step_that_does_not_add_up_is_refused_where_it_is_built(step):
    with pytest.raises(errors.PlanError, match=r"^w: "):
        Step("w", (2,), "float32", **step)
    document = dict(steps=[dict(name="w", shape=[2], dtype="float32", **step)])
    with pytest.raises(errors.PlanError, match=r"^w: "):
        Plan.from_dict(document)


def test_read_back_that_differs_from_what_was_written_is_a_verification_error(ckpts, tmp_path):
    prefix, _ = ckpts["v2"]
    plan = Plan((Step("a", (), "int64", "copy", ("global_step",)),), (), Strategy("first"))
    dst = str(tmp_path / "model.ckpt")
    writing.execute(plan, open_checkpoint(prefix), dst)
    stored = open_checkpoint(prefix).read("global_step")
    writing._verify(plan, dst, {"a": values.fingerprint(stored)})  # pylint: disable=protected-access
    with pytest.raises(errors.VerificationError,  # like with like: a fingerprint, another value
                       match=r"model\.ckpt: a reads back different bytes than were written"):
        writing._verify(plan, dst, {"a": values.fingerprint(stored + 1)})  # pylint: disable=protected-access
    wider = Plan(plan.steps + (Step("b", (), "int64", "copy", ("global_step",)),), (), plan.strategy)
    with pytest.raises(errors.VerificationError, match=r"lacks \['b'\]"):
        writing._verify(wider, dst, {})  # pylint: disable=protected-access


def test_output_over_the_input_is_refused_even_with_force(ckpts):
    prefix, _ = ckpts["v2"]
    before = snapshot(*_input_files(prefix))
    with pytest.raises(errors.OutputError, match=r"is the input checkpoint .*give another"):
        migration.migrate(prefix, prefix, force=True)
    assert snapshot(*_input_files(prefix)) == before


def test_dry_run_plan_writes_nothing(ckpts, tmp_path):
    prefix, _ = ckpts["v2"]
    folder = os.path.dirname(prefix)
    before = sorted(os.listdir(folder))
    plan = migration.plan_checkpoint(prefix, strategy="mean", drop_optimizer_state=True)
    assert sorted(os.listdir(folder)) == before
    merged = [s for s in plan.steps if s.action == "merge"]
    assert {s.name for s in merged} == {t.format(0) for t in (KERNEL, BIAS, CAND_KERNEL, CAND_BIAS)}
    assert all(s.layers == (0, 1, 2) for s in merged)


def test_unshare_copies_the_shared_layer_to_every_layer(ckpts, tmp_path):
    prefix, values = ckpts["v2"]
    shared = str(tmp_path / "shared" / "model.ckpt")
    migration.migrate(prefix, shared, strategy="layer:1")
    out = str(tmp_path / "unshared" / "model.ckpt")
    migration.unshare(shared, out, layers=4)
    got = _read_all(out)
    for layer in range(4):
        _assert_bitwise(got[KERNEL.format(layer)], values[KERNEL.format(1)])
        _assert_bitwise(got[CAND_BIAS.format(layer)], values[CAND_BIAS.format(1)])
    _assert_bitwise(got["vocab"], values["vocab"])


# ------------------------------------------------------------------------------- inspecting


def test_inspect_groups_layers_with_their_largest_difference(ckpts):
    prefix, values = ckpts["sharded"]
    inspection = migration.inspect_checkpoint(prefix)
    groups = {g.key: g for g in inspection.groups}
    kernel = groups[KERNEL.format(0)]
    assert kernel.layers == (0, 1, 2) and kernel.shareable and kernel.shapes[0] == (6, 6)
    stack = np.stack([values[KERNEL.format(k)].astype(np.float64) for k in range(LAYERS)])
    assert kernel.max_abs_difference == pytest.approx(float(np.max(stack.max(0) - stack.min(0))))
    assert groups[BIAS.format(0)].max_abs_difference == 0.0
    plain = {v.name: v for v in inspection.variables if v.group is None}
    assert set(plain) == {"global_step", "vocab", "embedding"}
    assert plain["embedding"].nbytes == 6 * 3 * 4
    table = inspection.format_table()
    assert KERNEL.format(0) in table and "0,1,2" in table
    assert inspection.to_dict()["groups"][0]["layers"] == [0, 1, 2]


def test_inspect_marks_groups_whose_shapes_differ(tmp_path):
    with tf1.Graph().as_default():
        tf1.get_variable(KERNEL.format(0), initializer=np.zeros((6, 4), np.float32))
        tf1.get_variable(KERNEL.format(1), initializer=np.zeros((8, 4), np.float32))
        saver = tf1.train.Saver()
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            prefix = saver.save(session, str(tmp_path / "model.ckpt"))
    (group,) = migration.inspect_checkpoint(prefix).groups
    assert not group.shareable and group.max_abs_difference is None
    assert group.shapes == ((6, 4), (8, 4))


# ------------------------------------------------------------------------------- verifying


def test_verify_against_a_real_meta_graph(ckpts, tmp_path):
    prefix, _ = ckpts["v2"]
    report = verify_checkpoint(prefix, prefix + ".meta")
    assert report.ok and report.matched == len(ckpts["v2"][1])
    specs = {s.name: s for s in read_meta_graph_variables(prefix + ".meta")}
    assert specs["embedding"].shape == (6, 3)  # partitioned: full_name and full_shape

    migrated = str(tmp_path / "model.ckpt")
    migration.migrate(prefix, migrated)
    report = verify_checkpoint(migrated, prefix + ".meta")
    assert not report.ok
    assert {s.name for s in report.missing} == {
        t.format(k) for t in (KERNEL, BIAS, CAND_KERNEL, CAND_BIAS) for k in (1, 2)}
    assert report.unexpected == () and report.mismatched == ()
    assert "FAILED" in report.format() and "missing" in report.to_dict()


def test_verify_reports_shape_and_dtype_mismatches_without_importing_the_graph(ckpts, tmp_path):
    prefix, _ = ckpts["v2"]
    with tf1.Graph().as_default():
        tf1.get_variable(KERNEL.format(0), shape=(5, 4), dtype=tf.float32)
        tf1.get_variable("global_step", shape=(), dtype=tf.int32)
        tf1.get_variable("extra", shape=(1,))
        meta = str(tmp_path / "graph.meta")
        tf1.train.export_meta_graph(meta, as_text=True)
    report = verify_checkpoint(prefix, meta)
    mismatched = {m.name: m for m in report.mismatched}
    assert mismatched[KERNEL.format(0)].graph_shape == (5, 4)
    assert mismatched[KERNEL.format(0)].ckpt_shape == (6, 6)
    assert mismatched["global_step"].graph_dtype == "int32"
    assert [s.name for s in report.missing] == ["extra"]
    assert "vocab" in {s.name for s in report.unexpected}


def test_verify_rejects_a_file_that_is_no_meta_graph(ckpts):
    prefix, _ = ckpts["v2"]
    with pytest.raises(errors.CheckpointError, match=r"model\.ckpt-7\.index: not a MetaGraphDef"):
        verify_checkpoint(prefix, prefix + ".index")


# ------------------------------------------------------------------------------- restoring


def _shared_graph(kernel_shape=(6, 6)):
    """Variables a shared 3-layer GRU stack plus the extras would create (layer 0 only)."""
    tf1.get_variable(KERNEL.format(0), shape=kernel_shape)
    tf1.get_variable(BIAS.format(0), shape=(6,))
    tf1.get_variable(CAND_KERNEL.format(0), shape=(6, 3), dtype=tf.float16)
    tf1.get_variable(CAND_BIAS.format(0), shape=(3,), dtype=tf.bfloat16)
    tf1.get_variable("global_step", shape=(), dtype=tf.int64)
    tf1.get_variable("embedding", shape=(6, 3), partitioner=tf1.fixed_size_partitioner(2))
    tf1.Variable([b"", b"", b""], name="vocab")


def test_restore_shared_assigns_every_variable_by_the_strategy(ckpts):
    prefix, values = ckpts["v2"]
    with tf1.Graph().as_default():
        _shared_graph()
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            restore_shared(session, prefix, strategy="mean")
            got = {v.op.name: session.run(v) for v in tf1.global_variables()}
    expected = np.mean([values[KERNEL.format(k)].astype(np.float64) for k in range(LAYERS)], 0)
    _assert_bitwise(got[KERNEL.format(0)], expected.astype(np.float32))
    _assert_bitwise(got["global_step"], values["global_step"])
    _assert_bitwise(got["vocab"], values["vocab"])
    _assert_bitwise(np.concatenate([got["embedding/part_0"], got["embedding/part_1"]]),
                    values["embedding"])


def test_restore_shared_names_missing_variables(ckpts):
    prefix, _ = ckpts["v2"]
    with tf1.Graph().as_default():
        _shared_graph()
        tf1.get_variable("decoder/w", shape=(2,))
        with tf1.Session() as session:
            with pytest.raises(errors.VerificationError,
                               match=r"would not provide 1 graph variable\(s\): decoder/w"):
                restore_shared(session, prefix)


def test_restore_shared_names_shape_mismatches(ckpts):
    prefix, _ = ckpts["v2"]
    with tf1.Graph().as_default():
        _shared_graph(kernel_shape=(8, 6))
        with tf1.Session() as session:
            with pytest.raises(errors.IncompatibleShapeError,
                               match=rf"variable {KERNEL.format(0)} has shape \[8, 6\] in the "
                                     rf"graph but \[6, 6\]"):
                restore_shared(session, prefix)


def test_restore_shared_names_dtype_mismatches(ckpts):
    prefix, _ = ckpts["v2"]
    with tf1.Graph().as_default():
        tf1.get_variable("global_step", shape=(), dtype=tf.int32)
        with tf1.Session() as session:
            with pytest.raises(errors.IncompatibleDtypeError,
                               match=r"variable global_step is int32 in the graph but int64"):
                restore_shared(session, prefix, var_list=tf1.global_variables())


def test_restore_shared_works_on_a_finalized_graph_and_adds_no_ops(ckpts):
    prefix, values = ckpts["v2"]
    with tf1.Graph().as_default() as graph:
        _shared_graph()
        init = tf1.global_variables_initializer()
        graph.finalize()
        with tf1.Session() as session:
            session.run(init)
            restore_shared(session, prefix, strategy="first")
            restore_shared(session, prefix, strategy="first")
            kernel, = [v for v in tf1.global_variables() if v.op.name == KERNEL.format(0)]
            _assert_bitwise(session.run(kernel), values[KERNEL.format(0)])


def test_api_takes_one_regex_as_a_string_and_renames_as_a_dict(ckpts):
    prefix, _ = ckpts["v2"]
    plan = migration.plan_checkpoint(prefix, excludes="^global_step$",
                                     renames={"multi_rnn_cell": "stack"})
    names = {step.name for step in plan.steps}
    assert "global_step" in names and "rnn/stack/cell_0/gru_cell/gates/kernel" in names
    assert any(step.action == "merge" for step in plan.steps)
