"""Checkpoints at URLs: TensorFlow's in-process ram:// file system stands in for a bucket (the
same tf.io.gfile calls serve gs://). Every command gives byte for byte what it gives on local
files; a URL never becomes a local folder; a refused or failed run leaves nothing there.

ram:// lives in this process: every run here is in-process (run_main).
"""

import os
import time
import uuid

import numpy as np
import pytest

from legacy_share import errors, file_systems, remote_output, writing
from legacy_share.testing import tf, tf1
from tests.file_guard import error_line, run_main, save_variables, snapshot

KERNEL = "rnn/multi_rnn_cell/cell_{}/gru_cell/gates/kernel"
BIAS = "rnn/multi_rnn_cell/cell_{}/gru_cell/gates/bias"
OLD_KERNEL = "rnn/multi_rnn_cell/cell_{}/gru_cell/gates/weights"  # TF 1.0 name


def _bucket():
    """A fresh ram:// folder (ram:// is shared by the whole process)."""
    return f"ram://legacy-share-test-{uuid.uuid4().hex[:8]}"


def _upload(folder, bucket):
    """Copies every file of local `folder` into URL folder `bucket` -> `bucket`."""
    for name in os.listdir(folder):
        tf.io.gfile.copy(os.path.join(folder, name), f"{bucket}/{name}")
    return bucket


def _remote_files(bucket):
    """{name under `bucket`: bytes} of every file there, folders walked."""
    found = {}
    for folder, _, names in tf.io.gfile.walk(bucket):
        for name in names:
            path = f"{folder.rstrip('/')}/{name}"
            with tf.io.gfile.GFile(path, "rb") as handle:
                found[path[len(bucket) + 1:]] = handle.read()
    return found


def _local_files(folder):
    found = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as handle:
            found[name] = handle.read()
    return found


@pytest.fixture(scope="module", params=["V2", "V1"])
def legacy(request, tmp_path_factory):
    """A 2-layer legacy GRU checkpoint (TF 1.0 names) in a local folder and the same files in a
    ram:// bucket, with a shared graph's .meta -> (local folder, bucket)."""
    folder = str(tmp_path_factory.mktemp("legacy"))
    rng = np.random.RandomState(5)
    variables = {"global_step": np.int64(7)}
    for layer in range(2):
        variables[OLD_KERNEL.format(layer)] = rng.randn(4, 4).astype(np.float32)
        variables[BIAS.format(layer).replace("bias", "biases")] = np.ones(4, np.float32)
    save_variables(folder, variables, write_version=request.param)
    with tf1.Graph().as_default():
        tf1.get_variable(KERNEL.format(0), shape=(4, 4))
        tf1.get_variable(BIAS.format(0), shape=(4,))
        tf1.get_variable("global_step", shape=(), dtype="int64")
        tf1.train.export_meta_graph(os.path.join(folder, "shared.meta"))
    before = snapshot(folder)
    bucket = _upload(folder, _bucket())
    uploaded = _remote_files(bucket)
    yield folder, bucket
    assert snapshot(folder) == before and _remote_files(bucket) == uploaded, "an input changed"


@pytest.fixture(autouse=True)
def _in_empty_folder(url_never_local):  # pylint: disable=unused-argument
    """Each test runs in an empty working folder (conftest.url_never_local)."""


def _migrate(capsys, src, dst, *options):
    code, out, err = run_main(capsys, "migrate", src, dst, *options)
    assert code == 0, err
    return out


@pytest.mark.parametrize("route", ["ram->ram", "ram->local", "local->ram"])
def test_migrate_writes_what_a_local_run_writes(capsys, legacy, tmp_path, route):
    folder, bucket = legacy
    local_out = str(tmp_path / "local" / "model.ckpt")
    _migrate(capsys, os.path.join(folder, "model.ckpt"), local_out)
    src = (bucket if route.startswith("ram") else folder) + "/model.ckpt"
    out_bucket = _bucket()
    dst = (out_bucket if route.endswith("ram") else str(tmp_path / "other")) + "/out/model.ckpt"
    text = _migrate(capsys, src, dst)
    assert f"wrote {dst}" in text
    expected = _local_files(os.path.dirname(local_out))
    got = (_remote_files(out_bucket + "/out") if route.endswith("ram")
           else _local_files(os.path.dirname(dst)))
    assert {k.replace("out/", ""): v for k, v in got.items()} == expected
    assert set(expected) == {"checkpoint", "model.ckpt.index",
                             "model.ckpt.data-00000-of-00001"}


def test_inspect_and_verify_say_what_they_say_of_local_files(capsys, legacy, tmp_path):
    folder, bucket = legacy
    for argv in (["inspect", "{}/model.ckpt"], ["inspect", "{}"],
                 ["inspect", "{}/model.ckpt", "--json"],
                 ["verify", "{}/model.ckpt", "--meta", "{}/shared.meta"]):
        local = run_main(capsys, *[a.format(folder) for a in argv])
        remote = run_main(capsys, *[a.format(bucket) for a in argv])
        assert remote == tuple(part.replace(folder, bucket) if isinstance(part, str) else part
                               for part in local), argv
    shared = _bucket() + "/shared.ckpt"
    _migrate(capsys, bucket + "/model.ckpt", shared, "--drop-optimizer-state")
    code, out, _ = run_main(capsys, "verify", shared, "--meta", bucket + "/shared.meta")
    assert code == 0 and out.startswith("OK: 3 variable(s) match")


def test_unshare_writes_what_a_local_run_writes(capsys, legacy, tmp_path):
    folder, _ = legacy
    shared_local = str(tmp_path / "shared" / "model.ckpt")
    _migrate(capsys, os.path.join(folder, "model.ckpt"), shared_local)
    shared = _upload(os.path.dirname(shared_local), _bucket()) + "/model.ckpt"
    local_out = str(tmp_path / "unshared" / "model.ckpt")
    remote_out = _bucket()
    for src, dst in ((shared_local, local_out), (shared, remote_out + "/model.ckpt")):
        code, _, err = run_main(capsys, "unshare", src, dst, "--layers", "3")
        assert code == 0, err
    assert _remote_files(remote_out) == _local_files(os.path.dirname(local_out))


def test_an_existing_output_is_refused_without_force_and_replaced_with_it(capsys, legacy):
    folder, bucket = legacy
    out = _bucket()
    _migrate(capsys, bucket + "/model.ckpt", out + "/model.ckpt")
    first = _remote_files(out)
    code, _, err = run_main(capsys, "migrate", bucket + "/model.ckpt", out + "/model.ckpt",
                            "--strategy", "layer:1")
    assert code == 1 and "a checkpoint exists there" in error_line(err)
    assert _remote_files(out) == first
    _migrate(capsys, folder + "/model.ckpt", out + "/model.ckpt", "--strategy", "layer:1",
             "--force")
    replaced = _remote_files(out)
    assert set(replaced) == set(first) and replaced != first


def test_the_input_is_never_the_output(capsys, legacy):
    _, bucket = legacy
    code, _, err = run_main(capsys, "migrate", bucket, bucket + "/model.ckpt", "--force")
    assert code == 1 and "is the input checkpoint" in error_line(err)


def _break_rename_of(monkeypatch, suffix):
    """Makes the move of the file ending in `suffix` fail, as a lost connection would."""
    rename = file_systems.rename

    def failing(source, target):
        if target.endswith(suffix):
            raise errors.OutputError(f"{target}: cannot write it (connection reset)")
        rename(source, target)

    monkeypatch.setattr(file_systems, "rename", failing)


@pytest.mark.parametrize("suffix", [".index", ".data-00000-of-00001"])
def test_a_failed_move_leaves_nothing_at_the_destination(capsys, legacy, monkeypatch, suffix):
    _, bucket = legacy
    out = _bucket()
    _break_rename_of(monkeypatch, suffix)
    code, _, err = run_main(capsys, "migrate", bucket + "/model.ckpt", out + "/new/model.ckpt")
    assert code == 1 and "cannot move the output into place" in error_line(err)
    assert _remote_files(out) == {} and not tf.io.gfile.exists(out + "/new")


def test_a_failed_verification_leaves_nothing_at_the_destination(capsys, legacy, monkeypatch):
    _, bucket = legacy
    out = _bucket()

    def corrupt(*_):
        raise errors.VerificationError("model.ckpt reads back different bytes (test)")

    monkeypatch.setattr(writing, "_verify", corrupt)
    code, _, err = run_main(capsys, "migrate", bucket + "/model.ckpt", out + "/model.ckpt")
    assert code == 1 and "reads back different bytes" in error_line(err)
    assert _remote_files(out) == {}


def test_a_scheme_tensorflow_does_not_serve_is_one_line(capsys, tmp_path, legacy):
    if "s3" in tf.io.gfile.get_registered_schemes():
        pytest.skip("s3:// is served here (tensorflow-io is installed)")
    folder, _ = legacy
    for argv in (["migrate", folder + "/model.ckpt", "s3://bucket/out/model.ckpt"],
                 ["inspect", "s3://bucket/model.ckpt"],
                 ["verify", folder + "/model.ckpt", "--meta", "s3://bucket/shared.meta"]):
        code, _, err = run_main(capsys, *argv)
        line = error_line(err)
        assert code == 1 and "s3://" in line and "tensorflow-io" in line, argv


def test_a_bucket_without_a_path_is_no_output(capsys, legacy):
    folder, _ = legacy
    code, _, err = run_main(capsys, "migrate", folder + "/model.ckpt", "gs://some-bucket")
    assert code == 1 and "names a bucket, not a path in it" in error_line(err)


def test_an_unreachable_bucket_is_one_line_within_seconds(capsys):
    started = time.monotonic()
    code, _, err = run_main(capsys, "inspect", "gs://legacy-share-no-such-bucket-5c1e/m.ckpt")
    assert code == 1 and error_line(err)
    assert time.monotonic() - started < 60


def test_short_gcs_retries_are_set_unless_the_user_set_them(monkeypatch):
    for key in file_systems.GCS_SHORT_TIMEOUTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GCS_RETRY_CONFIG_MAX_RETRIES", "7")
    monkeypatch.setattr(file_systems, "_served", set())
    file_systems.check_served("gs://bucket/model.ckpt")
    assert os.environ["GCS_RETRY_CONFIG_MAX_RETRIES"] == "7"
    for key, value in file_systems.GCS_SHORT_TIMEOUTS.items():
        if key != "GCS_RETRY_CONFIG_MAX_RETRIES":
            assert os.environ[key] == value


def test_a_remote_temp_folder_and_the_folders_made_go_with_a_failure():
    out = _bucket() + "/a/b/model.ckpt"
    with pytest.raises(RuntimeError):
        with remote_output.RemoteOutput(out, []) as output:
            assert tf.io.gfile.isdir(output.temp)
            raise RuntimeError("stop")
    assert not tf.io.gfile.exists(out.split("/a/")[0] + "/a")


def test_a_replaced_output_goes_index_first_and_the_new_one_comes_index_last(capsys, legacy,
                                                                           monkeypatch):
    _, bucket = legacy
    out = _bucket()
    _migrate(capsys, bucket + "/model.ckpt", out + "/model.ckpt")
    calls = []
    for name in ("rename", "remove"):
        def record(*paths, name=name, function=getattr(file_systems, name)):
            calls.append((name, os.path.basename(paths[-1])))
            function(*paths)
        monkeypatch.setattr(file_systems, name, record)
    _migrate(capsys, bucket + "/model.ckpt", out + "/model.ckpt", "--force")
    assert calls == [("remove", "checkpoint"), ("remove", "model.ckpt.index"),
                     ("remove", "model.ckpt.data-00000-of-00001"),
                     ("rename", "model.ckpt.data-00000-of-00001"), ("rename", "model.ckpt.index"),
                     ("rename", "checkpoint")]


def test_restore_shared_reads_a_checkpoint_at_a_url(legacy):
    from legacy_share import restore_shared  # pylint: disable=import-outside-toplevel
    folder, bucket = legacy
    restored = []
    for src in (folder, bucket):
        with tf1.Graph().as_default():
            kernel = tf1.get_variable(KERNEL.format(0), shape=(4, 4))
            bias = tf1.get_variable(BIAS.format(0), shape=(4,))
            step = tf1.get_variable("global_step", shape=(), dtype="int64")
            with tf1.Session() as session:
                restore_shared(session, src + "/model.ckpt", "mean")
                restored.append(session.run([kernel, bias, step]))
    assert all(np.array_equal(a, b) for a, b in zip(*restored))


def test_files_in_folders_ram_does_not_list_are_found_and_removed():
    """ram:// lists no subfolder made only by writing a file into it (no folder marker): a
    SavedModel's variables/ is looked for by name, to be moved and to be removed."""
    root = _bucket() + "/temp"
    names = ["/m/saved_model.pb", "/m/variables/variables.index", "/m/assets/vocab.txt"]
    for name in names:
        with tf.io.gfile.GFile(root + name, "wb") as handle:
            handle.write(b"x")
    found = remote_output._files_under(root, ["m"])  # pylint: disable=protected-access
    assert found == sorted(names)
    remote_output._remove_tree(root, ["m"])  # pylint: disable=protected-access
    assert not tf.io.gfile.exists(root)


def test_a_missing_file_is_one_line_not_tensorflows_error():
    with pytest.raises(errors.OutputError, match="no such file"):
        file_systems.rename(_bucket() + "/gone.index", _bucket() + "/model.ckpt.index")
