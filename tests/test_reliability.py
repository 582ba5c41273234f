"""Reliability: the migrator never hurts its input, and every failure is clean.

Each test that migrates wraps the run in `untouched(...)`, which compares the bytes, sizes and
modification times of every input file before and after. Command-line tests expect exit code 1
with one line "legacy-share: error: <path>: ...", no traceback, and nothing at the destination.
They run `cli.main` in this process, or in a fresh one where the property needs a process of its
own: peak memory, a crash or a hang of TensorFlow, concurrent runs (the bad inputs share one).
"""

import glob
import os
import re
import shutil
import stat

import numpy as np
import pytest

from tests.file_guard import (assert_is_migration, change_index, cli, cli_async, copy_stack,
                              error_line, expected_checksums, load_fault_kill, run_batch, run_main,
                              snapshot, tensor_checksums, untouched)
from legacy_share import destination, errors, migration
from legacy_share.testing import tf, tf1
from legacy_share.reading import open_checkpoint

PREFIX = "model.ckpt-3"  # what save_legacy_stack writes
DATA = PREFIX + ".data-00000-of-00001"
MEMORY_MIB = 1200  # peak RSS a run on a small checkpoint stays under (TensorFlow alone: ~600)


def _rewrite(path, change):
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    with open(path, "wb") as handle:
        handle.write(change(data))


def _flip(data, at):
    data[at] ^= 0x10
    return data


# ------------------------------------------------------------------- corrupted and wrong inputs

# name -> (make(folder, v2 stack, v1 stack) -> (path given to the CLI, path the error must name),
#          regex the error line must match)
CASES = {
    "truncated data file": (
        lambda d, s, _: _corrupt(d, s, DATA, lambda b: b[:len(b) // 2], DATA),
        r"is truncated: it has \d+ bytes, and tensor '.*' lies at bytes"),
    "truncated index": (
        lambda d, s, _: _corrupt(d, s, PREFIX + ".index", lambda b: b[:len(b) // 2],
                                 PREFIX + ".index"),
        r"not a readable V2 index"),
    "garbled index": (
        lambda d, s, _: _corrupt(d, s, PREFIX + ".index",
                                 lambda b: b[:64] + b"\xAB" * 32 + b[96:], PREFIX + ".index"),
        r"not a readable V2 index \(block checksum mismatch\)"),
    "flipped data byte (V2 CRC)": (
        lambda d, s, _: _corrupt(d, s, DATA, lambda b: _flip(b, 20), PREFIX),  # a layer-0 tensor
        r"Checksum does not match"),
    "missing data shard": (
        lambda d, s, _: _corrupt(d, s, DATA, None, DATA),
        r"data file .* is missing"),
    "truncated V1 file": (
        lambda d, _, s1: _corrupt(d, s1, PREFIX, lambda b: b[:len(b) - 100], PREFIX),
        r"not a readable V1 checkpoint file"),
    "state file pointing nowhere": (
        lambda d, s, _: _state(d, s, 'model_checkpoint_path: "model.ckpt-999"\n'),
        r"checkpoint: names .*model\.ckpt-999, which does not exist"),
    "garbled state file": (
        lambda d, s, _: _state(d, s, "model_checkpoint_path: {{{ \x01\n"),
        r"checkpoint: unreadable state file"),
    "empty file": (
        lambda d, *_: _file(d, "model.ckpt", b""), r"not a readable V1 checkpoint file"),
    "empty index": (
        lambda d, *_: _file(d, "model.ckpt.index", b"", given="model.ckpt"),
        r"not a readable V2 index"),
    "folder without a checkpoint": (
        lambda d, *_: (_file(d, "notes.txt", b"hello")[0] and d, d),
        r"no `checkpoint` state file names a checkpoint here"),
    "a file that is no checkpoint": (
        lambda d, *_: _file(d, "photo.jpg", b"\xff\xd8\xff\xe0" + os.urandom(3000)),
        r"not a readable V1 checkpoint file"),
    "a .meta given as checkpoint without one": (
        lambda d, s, _: _meta_alone(d, s), r"is a MetaGraphDef, not a checkpoint"),
    "spaces and non-ASCII in the path": (
        lambda d, s, _: _corrupt(os.path.join(d, "mödel daten ü"), s, DATA,
                                 lambda b: b[:len(b) // 3], DATA),
        r"mödel daten ü/ckpt/model\.ckpt-3\.data-00000-of-00001: is truncated"),
    # Crafted from the real index: TensorFlow aborts (rank), allocates 1.8 GB (strings), or reads
    # past the data file before it notices; a FIFO blocks any reader; whole reads of a sparse
    # 3 GiB file take gigabytes.
    "an entry of rank 255 (TF aborts)": (
        lambda d, s, _: _crafted(d, s, lambda e: _reshape(e, [1] * 255)),
        r"corrupt index entry .*: rank 255 \(at most 254\)"),
    "5*10^7 strings declared in 100 bytes": (
        lambda d, s, _: _crafted(d, s, lambda e: _strings(e, 5 * 10 ** 7, 100)),
        r"corrupt index entry 'zz/strings': 50000000 strings cannot fit in 100 bytes"),
    "an entry beyond the end of its data file": (
        lambda d, s, _: _crafted(d, s, lambda e: _shift(e, 10 ** 6), named=DATA),
        r"-of-00001: is truncated: it has \d+ bytes, and tensor .* lies at bytes 100\d+"),
    "a FIFO as data file": (
        lambda d, s, _: _corrupt(d, s, DATA, _fifo, DATA), r"is a FIFO, not a regular file"),
    "a FIFO as state file": (
        lambda d, s, _: _state(d, s, None), r"state file is a FIFO, not a regular file"),
    "a sparse 3 GiB index": (
        lambda d, s, _: _corrupt(d, s, PREFIX + ".index", 3 << 30, PREFIX + ".index"),
        r"not a readable V2 index \(bad magic number\)"),
    "a sparse 3 GiB state file": (
        lambda d, s, _: _state(d, s, f'model_checkpoint_path: "{PREFIX}"\n', 3 << 30),
        r"state file has 3221225472 bytes, more than any state file"),
    "verify --meta /dev/zero": (
        lambda d, s, _: (["verify", s.prefix, "--meta", "/dev/zero"], "/dev/zero"),
        r"MetaGraphDef is a character device, not a regular file"),
    "verify --meta a FIFO": (
        lambda d, s, _: (["verify", s.prefix, "--meta", _make_fifo(d, "graph.meta")],
                         os.path.join(d, "graph.meta")),
        r"MetaGraphDef is a FIFO, not a regular file"),
    "--exclude '(a|a)+b' on a long name (catastrophic backtracking)": (
        lambda d, s, _: (["migrate", _long_name_checkpoint(d), os.path.join(d, "out"),
                          "--dry-run", "--exclude", "(a|a)+b"], "(a|a)+b"),
        r"exclude regex '\(a\|a\)\+b' took more than 2 s on names such as 'a{40}_c'"),
}


def _corrupt(folder, stack, name, change, named):
    prefix = copy_stack(stack, os.path.join(folder, "ckpt"))
    path = os.path.join(os.path.dirname(prefix), name)
    if change is None:
        os.remove(path)
    elif isinstance(change, int):
        os.truncate(path, change)  # sparse: the original bytes, then zeros
    elif change is _fifo:
        os.remove(path)
        os.mkfifo(path)
    else:
        _rewrite(path, change)
    return prefix, os.path.join(os.path.dirname(prefix), named)


def _fifo(data):
    return data


def _make_fifo(folder, name):
    os.makedirs(folder, exist_ok=True)
    os.mkfifo(os.path.join(folder, name))
    return os.path.join(folder, name)


def _state(folder, stack, text, size=None):
    prefix = copy_stack(stack, os.path.join(folder, "ckpt"))
    path = os.path.join(os.path.dirname(prefix), "checkpoint")
    if os.path.lexists(path):
        os.remove(path)
    if text is None:
        os.mkfifo(path)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        if size:
            os.truncate(path, size)
    return os.path.dirname(prefix), path if text is None or size else os.path.dirname(prefix)


def _file(folder, name, data, given=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)
    path = os.path.join(folder, given or name)
    return path, path


def _meta_alone(folder, stack):
    os.makedirs(folder)
    path = os.path.join(folder, "graph.meta")
    shutil.copy(stack.prefix + ".meta", path)
    return path, path


def _crafted(folder, stack, change, named=PREFIX + ".index"):
    prefix = copy_stack(stack, os.path.join(folder, "ckpt"))
    change_index(prefix + ".index", change)
    return prefix, os.path.join(os.path.dirname(prefix), named)


def _first_float(entries):
    return next(e for k, e in sorted(entries.items()) if e.dtype == 1 and not e.slices)


def _reshape(entries, dims):
    entry = _first_float(entries)
    del entry.shape.dim[:]
    for size in dims:
        entry.shape.dim.add().size = size
    entry.size = 4


def _strings(entries, count, size):
    entry = type(_first_float(entries))()
    entry.dtype = 7
    entry.shape.dim.add().size = count
    entry.size = size
    entries[b"zz/strings"] = entry


def _shift(entries, offset):
    _first_float(entries).offset += offset


def _long_name_checkpoint(folder):
    """A V2 checkpoint (real Saver) with one variable named 'a' * 40 + '_c' -> its prefix."""
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, "long.ckpt")
    with tf1.Graph().as_default():
        tf1.get_variable("a" * 40 + "_c", initializer=np.zeros(2, np.float32))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(session, prefix, write_meta_graph=False)
    return prefix


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory, v2, v1):
    """Runs every case of CASES (`legacy-share migrate GIVEN OUT`, or the argv it gives) in one
    fresh process -> {case: (named, code, stderr, out, input untouched, peak MiB, MiB it rose)}."""
    root = str(tmp_path_factory.mktemp("bad inputs"))
    cases = []
    for index, (case, (make, _)) in enumerate(CASES.items()):
        folder = os.path.join(root, f"case{index}")
        given, named = make(os.path.join(folder, "in"), v2, v1)
        out = os.path.join(folder, "out", "model.ckpt")
        argv = given if isinstance(given, list) else ["migrate", given, out]
        cases.append((case, argv, named, os.path.join(folder, "in"), out))
    before = [snapshot(folder) for _, _, _, folder, _ in cases]
    done = run_batch([argv for _, argv, _, _, _ in cases], root)
    return {case: (named, code, stderr, out, old == snapshot(folder), peak, growth)
            for (case, _, named, folder, out), old, (code, stderr, peak, growth)
            in zip(cases, before, done)}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_naming_the_file_exit_1_nothing_written(bad_input_runs, case):
    named, code, stderr, out, input_untouched, peak, growth = bad_input_runs[case]
    assert code == 1, stderr
    line = error_line(stderr)
    assert named in line, line
    assert re.search(CASES[case][1], line), line
    assert not os.path.exists(os.path.dirname(out)), os.listdir(os.path.dirname(out))
    assert input_untouched
    # The batch process's peak is never below a fresh process's: TensorFlow is loaded in both.
    assert peak < MEMORY_MIB, f"{peak:.0f} MiB (this case raised it by {growth:.0f} MiB)"


def test_paths_with_spaces_and_non_ascii_letters_migrate(capsys, v2, tmp_path):
    src = copy_stack(v2, str(tmp_path / "Modell für Ärzte" / "run 1"))
    dst = str(tmp_path / "neue Ausgabe ü" / "geteilt model.ckpt")
    with untouched(os.path.dirname(src)):
        code, _, err = run_main(capsys, "migrate", src, dst, "--strategy", "mean")
    assert code == 0, err
    assert open_checkpoint(os.path.dirname(dst)).prefix == dst  # the state file names it
    assert sorted(os.listdir(os.path.dirname(dst))) == [
        "checkpoint", "geteilt model.ckpt.data-00000-of-00001", "geteilt model.ckpt.index"]


def test_output_next_to_the_input_leaves_every_input_file_alone(capsys, v2, tmp_path):
    """Not even the folder's `checkpoint` state file (it names the input) is rewritten."""
    src = copy_stack(v2, str(tmp_path / "run"))
    folder = os.path.dirname(src)
    before = snapshot(folder)
    code, _, err = run_main(capsys, "migrate", folder, os.path.join(folder, "shared.ckpt"))
    assert code == 0, err
    after = snapshot(folder)
    assert {p: after[p] for p in before} == before
    assert sorted(os.path.basename(p) for p in set(after) - set(before)) == [
        "shared.ckpt.data-00000-of-00001", "shared.ckpt.index"]
    assert os.path.basename(tf.train.latest_checkpoint(folder)) == os.path.basename(src)


def test_force_never_rewrites_a_state_file_that_lists_other_checkpoints(capsys, v2, tmp_path):
    src = copy_stack(v2, str(tmp_path / "run"))
    folder = os.path.dirname(src)
    dst = os.path.join(folder, "shared.ckpt")
    assert run_main(capsys, "migrate", src, dst)[0] == 0
    state = os.path.join(folder, "checkpoint")
    with open(state, "w", encoding="utf-8") as handle:  # as a training run that kept going
        handle.write(f'model_checkpoint_path: "{os.path.basename(src)}"\n'
                     f'all_model_checkpoint_paths: "shared.ckpt"\n'
                     f'all_model_checkpoint_paths: "{os.path.basename(src)}"\n')
    before = snapshot(folder)
    code, _, err = run_main(capsys, "migrate", src, dst, "--force")
    assert code == 1
    assert "lists it together with other checkpoints" in error_line(err)
    assert snapshot(folder) == before


def test_the_state_file_is_readable_like_savers(capsys, v2, tmp_path):
    dst = str(tmp_path / "out" / "model.ckpt")
    assert run_main(capsys, "migrate", v2.prefix, dst)[0] == 0
    mode = stat.S_IMODE(os.stat(tmp_path / "out" / "checkpoint").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


# ------------------------------------------------------------------- untrusted graphs


def test_verify_runs_none_of_the_file_ops_of_an_untrusted_meta_graph(v2, tmp_path):
    """The graph reads a FIFO (would block), writes files and saves a checkpoint: none may happen."""
    fifo = str(tmp_path / "secret.fifo")
    os.mkfifo(fifo)
    written = str(tmp_path / "written.txt")
    saved = str(tmp_path / "saved" / "model.ckpt")
    meta = str(tmp_path / "hostile.meta")
    ckpt = open_checkpoint(v2.prefix)
    with tf1.Graph().as_default():
        for spec in ckpt.specs:
            tf1.get_variable(spec.name, shape=spec.shape, dtype=spec.dtype, trainable=False,
                             initializer=tf1.zeros_initializer()
                             if spec.dtype != "string" else tf1.constant_initializer(""))
        content = tf.io.read_file(fifo)
        write = tf.io.write_file(written, content)
        tf1.add_to_collection(tf1.GraphKeys.INIT_OP, write)
        tf1.add_to_collection(tf1.GraphKeys.TABLE_INITIALIZERS, write)
        tf1.add_to_collection(tf1.GraphKeys.LOCAL_INIT_OP, write)
        tf1.train.Saver(var_list=tf1.global_variables()[:1])  # a SaveV2 in the saver_def
        tf.raw_ops.SaveV2(prefix=saved, tensor_names=["x"], shape_and_slices=[""],
                          tensors=[tf.constant(1.0)])
        tf1.train.export_meta_graph(meta)
    with untouched(os.path.dirname(v2.prefix)):
        result = cli("verify", v2.prefix, "--meta", meta, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:"), result.stdout
    assert not os.path.exists(written)
    assert not os.path.exists(os.path.dirname(saved))
    assert sorted(os.listdir(tmp_path)) == ["hostile.meta", "secret.fifo"]


# ------------------------------------------------------------------- concurrency


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """A ~60 MB per-layer GRU checkpoint with Adam slots: two runs' writing phases overlap.

    (Without the destination lock the race tests below fail: both runs write, both exit 0.)
    """
    folder = str(tmp_path_factory.mktemp("medium"))
    fault_kill = load_fault_kill()
    return fault_kill.make_checkpoint(folder, 60)


def test_two_migrations_to_one_destination_one_wins_the_other_fails_cleanly(medium, tmp_path):
    dst = str(tmp_path / "out" / "model.ckpt")
    with untouched(medium):
        runs = [cli_async("migrate", medium, dst, "--strategy", strategy)
                for strategy in ("first", "mean")]
        outputs = [p.communicate(timeout=300) for p in runs]
        results = [(p.returncode, out, err) for p, (out, err) in zip(runs, outputs)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = [err for code, _, err in results if code == 1][0]
    line = error_line(loser)
    assert ("another legacy-share run" in line or "a checkpoint exists there" in line), line
    winner = "first" if results[0][0] == 0 else "mean"
    assert_is_migration(medium, dst, winner)
    assert sorted(os.listdir(tmp_path / "out")) == [
        "checkpoint", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]


def test_two_forced_migrations_at_once_leave_one_complete_output(medium, tmp_path):
    dst = str(tmp_path / "out" / "model.ckpt")
    with untouched(medium):
        runs = [cli_async("migrate", medium, dst, "--strategy", strategy, "--force")
                for strategy in ("first", "mean")]
        results = [(p,) + p.communicate(timeout=300) for p in runs]
    for process, _, err in results:
        assert process.returncode == 0 or "another legacy-share run" in error_line(err), err
    got = tensor_checksums(dst)
    matches = [s for s in ("first", "mean") if got == expected_checksums(medium, s)]
    assert len(matches) == 1
    assert not glob.glob(str(tmp_path / "out" / ".*"))  # no temp folder, no lock file


def test_a_held_claim_refuses_and_what_a_dead_run_left_is_removed(v2, tmp_path):
    dst = str(tmp_path / "model.ckpt")
    claim = destination.Output(dst, [])
    claim.__enter__()  # as a running migration holds it: a lock file and a temp folder
    try:
        with pytest.raises(errors.DestinationExistsError,
                           match=rf"another legacy-share run \(pid {os.getpid()}\) is writing"):
            migration.migrate(v2.prefix, dst)
        left = sorted(os.listdir(tmp_path))
        assert left == sorted([os.path.basename(destination.lock_path(dst)),
                               os.path.basename(claim.temp)])
        with open(os.path.join(claim.temp, "part-00000.index"), "wb") as handle:
            handle.write(b"half")
    finally:
        os.close(claim._lock[1])  # pylint: disable=protected-access  # as if killed: files stay
    with untouched(os.path.dirname(v2.prefix)):
        migration.migrate(v2.prefix, dst)
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]


# ------------------------------------------------------------------- corrupt meta graphs


def _corrupt_meta(path, case):
    """A .meta whose variable's VariableDef has a non-UTF-8 name, or whose node has dtype 999."""
    from tensorflow.core.framework import variable_pb2  # pylint: disable=import-outside-toplevel
    with tf1.Graph().as_default():
        tf1.get_variable("w", shape=(2,))
        meta = tf1.train.export_meta_graph()
    collection = meta.collection_def["variables"].bytes_list
    if case == "variable name not UTF-8":
        variable = variable_pb2.VariableDef()
        variable.ParseFromString(collection.value[0])
        variable.variable_name = "w\x01:0"
        collection.value[0] = variable.SerializeToString().replace(b"w\x01:0", b"w\xff:0")
    else:
        node = [n for n in meta.graph_def.node if n.name == "w"][0]
        node.attr["dtype"].type = 999
    with open(path, "wb") as handle:
        handle.write(meta.SerializeToString())
    return path


@pytest.mark.parametrize("case", ["variable name not UTF-8", "unknown dtype"])
def test_verify_with_a_corrupt_meta_graph_is_one_line(v2, tmp_path, case):
    meta = _corrupt_meta(str(tmp_path / "bad.meta"), case)
    result = cli("verify", v2.prefix, "--meta", meta)
    assert result.returncode == 1
    assert "bad.meta" in error_line(result.stderr)
