"""Fuzzing the reader: mutated checkpoint bytes never crash the interpreter nor leak a traceback.

Two mutators, both seeded: `mutate_bytes` flips/overwrites/truncates/inserts raw bytes (most of
these die on TF's block and tensor checksums), and `mutate_index_entries` changes bytes inside
the V2 index's table blocks and then repairs the block CRCs, so the mutated shapes, dtypes,
offsets and sizes of the BundleEntryProtos reach TensorFlow's parser. Mutations run in a few
worker processes; a worker killed by a signal (a C++ CHECK abort) is a finding and is restarted
after the input that killed it.
"""

import collections
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

import pytest

from legacy_share import bundle

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTATIONS = 520
WORKERS = 2

# ------------------------------------------------------------------------------- mutators


def repair_crcs(data, blocks):
    """Rewrites the masked CRC32C trailer of each block (uncompressed blocks only)."""
    for offset, size in blocks:
        data[offset + size + 1:offset + size + 5] = struct.pack(
            "<I", bundle.masked_crc32c(bytes(data[offset:offset + size + 1])))
    return data


def mutate_bytes(rng, data):
    """A random raw mutation of `data` -> (kind, bytes)."""
    data = bytearray(data)
    kind = rng.choice(["flip", "byte", "truncate", "insert", "zero", "extend"])
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "byte":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "truncate":
        data = data[:rng.randrange(len(data))]
    elif kind == "insert":
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "zero":
        at = rng.randrange(len(data))
        data[at:at + rng.randint(1, 64)] = bytes(len(data[at:at + 64]))[:len(data[at:at + 64])]
    else:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return kind, bytes(data)


def mutate_index_entries(rng, data):
    """Changes 1-4 bytes inside the table's data blocks, then repairs their CRCs -> (kind, bytes)."""
    data = bytearray(data)
    blocks = bundle.table_blocks(bytes(data))
    data_blocks = blocks[2:] or blocks
    for _ in range(rng.randint(1, 4)):
        offset, size = rng.choice(data_blocks)
        at = offset + rng.randrange(max(size, 1))
        data[at] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256),
                               data[at] ^ (1 << rng.randrange(8))])
    return "index-entry", bytes(repair_crcs(data, blocks))


def mutation(seed, index, files, blobs):
    """The `index`-th seeded mutation of a checkpoint -> (target file, kind, mutated bytes)."""
    rng = random.Random(seed * 1_000_003 + index)
    target = rng.choice(files)
    if ".data-" not in target and rng.random() < 0.5:  # a table: V2 index or V1 file
        kind, data = mutate_index_entries(rng, blobs[target])
    else:
        kind, data = mutate_bytes(rng, blobs[target])
    return target, kind, data


# ------------------------------------------------------------------------------- worker


def worker(source, seed, start, stop, status_path, report_path):
    """Runs `legacy-share migrate` (in this process) on mutations [start, stop) of `source`.

    Writes the index being tried to `status_path` first, so that the parent can name the
    mutation if this process dies; appends one JSON line per outcome to `report_path`:
    "ok" (exit 0, output written), "clean error" (exit 1, one line naming the input, no
    output), or what went wrong.
    """
    import contextlib  # pylint: disable=import-outside-toplevel
    import io  # pylint: disable=import-outside-toplevel
    import legacy_share  # pylint: disable=import-outside-toplevel
    from legacy_share import cli  # pylint: disable=import-outside-toplevel
    legacy_share.prepare_tensorflow()

    files = sorted(f for f in os.listdir(source) if f != "checkpoint" and not f.endswith(".meta"))
    blobs = {}
    for name in files:
        with open(os.path.join(source, name), "rb") as handle:
            blobs[name] = handle.read()
    prefix = os.path.commonprefix(files).rstrip(".")
    scratch = tempfile.mkdtemp(prefix="fuzz-")
    out = os.path.join(scratch, "out")
    with open(report_path, "a", encoding="utf-8") as report:
        for index in range(start, stop):
            with open(status_path, "w", encoding="utf-8") as status:
                status.write(str(index))
            target, kind, data = mutation(seed, index, files, blobs)
            for name in files:
                with open(os.path.join(scratch, name), "wb") as handle:
                    handle.write(data if name == target else blobs[name])
            stdout, stderr = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                    code = cli.main(["migrate", os.path.join(scratch, prefix),
                                     os.path.join(out, "model.ckpt")])
                lines = stderr.getvalue().strip().splitlines()
                if code == 0:
                    outcome = "ok"
                elif (code == 1 and len(lines) == 1 and lines[0].startswith("legacy-share: error: ")
                      and not os.path.exists(out)):
                    outcome = "clean error"  # planning errors name the tensor, others the file
                else:
                    outcome = f"bad exit {code}"
                detail = stderr.getvalue()
            except Exception as exc:  # pylint: disable=broad-except
                outcome, detail = "uncaught " + type(exc).__name__, str(exc)
            for name in files:  # the input, mutated or not, is only read
                with open(os.path.join(scratch, name), "rb") as handle:
                    if handle.read() != (data if name == target else blobs[name]):
                        outcome = "INPUT MODIFIED"
            if sorted(os.listdir(scratch)) != sorted(files + (["out"] if outcome == "ok" else [])):
                outcome = f"left {sorted(os.listdir(scratch))}"
            shutil.rmtree(out, ignore_errors=True)
            report.write(json.dumps({"index": index, "file": target, "kind": kind,
                                     "outcome": outcome, "detail": detail[:300]}) + "\n")
            report.flush()
    shutil.rmtree(scratch, ignore_errors=True)


def run_fuzz(source, seed, count, workers, timeout=600):
    """Fuzzes checkpoint folder `source` with `count` mutations in `workers` processes -> outcomes.

    A worker that dies of a signal is recorded as "process died (signal N)" for the mutation
    it was on and restarted after it.
    """
    work = tempfile.mkdtemp(prefix="fuzz-run-")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3")
    bounds = [count * k // workers for k in range(workers + 1)]
    pending = [(k, bounds[k], bounds[k + 1]) for k in range(workers) if bounds[k] < bounds[k + 1]]
    outcomes = []
    try:
        while pending:
            running = []
            for k, start, stop in pending:
                status, report = (os.path.join(work, f"{name}-{k}") for name in ("status", "report"))
                code = (f"from tests.test_fuzz import worker; "
                        f"worker({source!r}, {seed}, {start}, {stop}, {status!r}, {report!r})")
                running.append((k, start, stop, subprocess.Popen(
                    [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)))
            pending = []
            for k, start, stop, process in running:
                _, err = process.communicate(timeout=timeout)
                if process.returncode == 0:
                    continue
                status = os.path.join(work, f"status-{k}")
                with open(status, encoding="utf-8") as handle:
                    dead = int(handle.read())
                outcomes.append({"index": dead, "outcome": f"process died ({process.returncode})",
                                 "detail": err.decode("utf-8", "replace")[-300:]})
                if dead + 1 < stop:
                    pending.append((k, dead + 1, stop))
        for k in range(workers):
            path = os.path.join(work, f"report-{k}")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as handle:
                    outcomes.extend(json.loads(line) for line in handle)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return outcomes


# ------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def small_v2(legacy_stack):
    return os.path.dirname(legacy_stack(cell="gru", layers=2, num_units=8, generation="tf0",
                                        write_version="V2").prefix)


@pytest.fixture(scope="module")
def small_v1(legacy_stack):
    return os.path.dirname(legacy_stack(cell="gru", layers=2, num_units=8, generation="tf0",
                                        write_version="V1").prefix)


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory):
    """A sharded V2 checkpoint (2 data files) with a partitioned variable, strings and ints."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from legacy_share.testing import tf1  # pylint: disable=import-outside-toplevel
    folder = str(tmp_path_factory.mktemp("partitioned"))
    with tf1.Graph().as_default():
        with tf1.device("/cpu:0"):
            tf1.get_variable("embedding", shape=(6, 3), initializer=tf1.ones_initializer(),
                             partitioner=tf1.fixed_size_partitioner(2))
        with tf1.device("/cpu:1"):
            tf1.get_variable("vocab", initializer=np.array([b"a", b"bc", b""]))
            tf1.get_variable("global_step", initializer=np.int64(7))
            for layer in range(2):
                tf1.get_variable(f"rnn/multi_rnn_cell/cell_{layer}/gru_cell/gates/kernel",
                                 initializer=np.full((4, 4), layer, np.float32))
        saver = tf1.train.Saver(sharded=True)
        config = tf1.ConfigProto(device_count={"CPU": 2})
        with tf1.Session(config=config) as session:
            session.run(tf1.global_variables_initializer())
            saver.save(session, os.path.join(folder, "model.ckpt"), write_meta_graph=False)
    assert len([f for f in os.listdir(folder) if ".data-" in f]) == 2
    return folder


def test_crc_repair_really_reaches_the_entry_parser(small_v2):
    """The index mutator must produce indexes that pass TF's block checksums (else it tests nothing)."""
    index = [f for f in os.listdir(small_v2) if f.endswith(".index")][0]
    with open(os.path.join(small_v2, index), "rb") as handle:
        original = handle.read()
    assert bytes(repair_crcs(bytearray(original), bundle.table_blocks(original))) == original
    outcomes = collections.Counter()
    rng = random.Random(5)
    for _ in range(20):
        _, data = mutate_index_entries(rng, original)
        outcomes["block checksum mismatch" in _open_index_error(small_v2, index, data)] += 1
    assert outcomes[True] == 0, outcomes


def _snapshot(folder):
    result = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as handle:
            result[name] = (handle.read(), os.stat(os.path.join(folder, name)).st_mtime_ns)
    return result


def _open_index_error(folder, index, data):
    from legacy_share import errors  # pylint: disable=import-outside-toplevel
    from legacy_share.reading import open_checkpoint  # pylint: disable=import-outside-toplevel
    scratch = tempfile.mkdtemp()
    try:
        for name in os.listdir(folder):
            shutil.copy(os.path.join(folder, name), scratch)
        with open(os.path.join(scratch, index), "wb") as handle:
            handle.write(data)
        try:
            open_checkpoint(os.path.join(scratch, index))
        except errors.CheckpointError as exc:
            return str(exc)
        return ""
    finally:
        shutil.rmtree(scratch)


@pytest.mark.parametrize("which, seed, count", [
    ("v2", 1, MUTATIONS), ("v1", 2, 120), ("partitioned", 3, 200)])
def test_mutated_checkpoints_give_clean_errors_never_a_crash(small_v2, small_v1, partitioned,
                                                             which, seed, count):
    source = {"v2": small_v2, "v1": small_v1, "partitioned": partitioned}[which]
    before = _snapshot(source)
    outcomes = run_fuzz(source, seed, count, WORKERS)
    assert _snapshot(source) == before
    counts = collections.Counter(o["outcome"] for o in outcomes)
    by_kind = collections.Counter((o.get("kind", "?"), o["outcome"]) for o in outcomes)
    print(f"\nfuzz {which}: {count} mutations -> {dict(counts)}; by kind: {dict(by_kind)}")
    assert len(outcomes) == count
    bad = [o for o in outcomes if o["outcome"] not in ("ok", "clean error")]
    assert not bad, bad[:5]
    assert counts["clean error"] >= count // 2  # the mutations really break the input


@pytest.mark.parametrize("shard_id, num_shards, problem", [
    (0, 1, ""), (1, 2, ""), (1, 1, "data file 1 of 1"), (7, 2, "data file 7 of 2")])
def test_an_entry_names_a_data_file_the_index_has(shard_id, num_shards, problem):
    """TensorFlow opens `.data-{shard_id}-of-{num_shards}` without checking the id."""
    from tensorflow.core.protobuf import tensor_bundle_pb2  # pylint: disable=import-outside-toplevel
    entry = tensor_bundle_pb2.BundleEntryProto(dtype=1, shard_id=shard_id, size=12)
    entry.shape.dim.add(size=3)
    assert bundle.entry_problem(entry, num_shards) == problem
