"""`export` to a URL (TensorFlow's in-process ram:// file system as the bucket): a .keras file,
a .weights.h5 pair and a SavedModel are written there, loaded back by Keras from there and
compute what the same export to local files computes; a refused or failed export leaves nothing
there, and never a local folder named after the scheme.

A .keras file holds the time it was saved, so exports are compared by their weights and
outputs, not their bytes. In-process runs use pytest's tf_keras process with `--keras 2`.
"""

import os
import uuid

import numpy as np
import pytest

from legacy_share import cli
from legacy_share.testing import tf, tf1  # noqa: F401  first: pytest's process serves tf_keras
from tests import export_cases
from tests.file_guard import error_line, snapshot

from legacy_share.keras import exporting  # noqa: E402  pylint: disable=wrong-import-order
from legacy_share.keras import model as _model  # noqa: E402  pylint: disable=wrong-import-order

from legacy_share import testing  # noqa: E402  pylint: disable=wrong-import-order

pytestmark = pytest.mark.skipif(not testing.supports_keras3(),
                                reason="exports as test_export_output (TensorFlow >= 2.16)")

NAMES = {"keras": "m.keras", "weights": "m.weights.h5", "saved_model": "m"}


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """A 2-layer GRU (TF's Saver) -> its prefix, guarded."""
    folder = tmp_path_factory.mktemp("remote_export") / "in"
    folder.mkdir()
    prefix = str(folder / "model.ckpt")
    export_cases.save_case(prefix, cell="gru", depth=4)
    before = snapshot(str(folder))
    yield prefix
    assert snapshot(str(folder)) == before, "an export changed its input"


@pytest.fixture(autouse=True)
def _in_empty_folder(url_never_local):  # pylint: disable=unused-argument
    """Each test runs in an empty working folder (conftest.url_never_local)."""


def _bucket():
    return f"ram://legacy-share-export-{uuid.uuid4().hex[:8]}"


def _export(capsys, *argv):
    code = cli.main(["export", *[str(a) for a in argv], "--keras", "2"])
    out, err = capsys.readouterr()
    return code, out, err


def _runs(src, dst):
    """The outputs of the export at `dst`, loaded by tf_keras / TensorFlow from there."""
    # pylint: disable=protected-access
    inputs, lengths = exporting._proof.probe_inputs(exporting.plan(src))
    return exporting._run_saved(dst, exporting.destination_format(dst), _model.keras_module(2),
                                2, inputs, lengths)


@pytest.mark.parametrize("fmt", list(NAMES))
def test_an_export_to_a_url_loads_back_and_computes_what_a_local_one_does(capsys, src,
                                                                          tmp_path, fmt):
    local = str(tmp_path / NAMES[fmt])
    remote = f"{_bucket()}/out/{NAMES[fmt]}"
    for dst in (local, remote):
        code, out, err = _export(capsys, src, dst)
        assert code == 0 and f"wrote {dst}" in out, err
    assert np.array_equal(_runs(src, remote), _runs(src, local))
    if fmt == "saved_model":
        for name in ("variables/variables.index", "variables/variables.data-00000-of-00001"):
            with open(os.path.join(local, name), "rb") as handle, \
                    tf.io.gfile.GFile(f"{remote}/{name}", "rb") as remote_handle:
                assert remote_handle.read() == handle.read(), name
    folder = os.path.dirname(remote)
    assert not tf.io.gfile.glob(folder + "/.*"), "a temp folder was left"


@pytest.mark.parametrize("fmt", list(NAMES))
def test_an_existing_export_is_refused_without_force_and_replaced_with_it(capsys, src, fmt):
    dst = f"{_bucket()}/{NAMES[fmt]}"
    assert _export(capsys, src, dst)[0] == 0
    code, _, err = _export(capsys, src, dst)
    assert code == 1 and "exists; pass --force" in error_line(err)
    code, _, err = _export(capsys, src, dst, "--force")
    assert code == 0, err
    _runs(src, dst)


@pytest.mark.parametrize("fmt", list(NAMES))
def test_a_failed_proof_leaves_nothing_at_the_url(capsys, src, monkeypatch, fmt):
    bucket = _bucket()
    real = exporting._run_saved  # pylint: disable=protected-access
    monkeypatch.setattr(exporting, "_run_saved", lambda *args: real(*args) + 1.0)
    code, _, err = _export(capsys, src, f"{bucket}/new/{NAMES[fmt]}")
    assert code == 1 and "not written: the exported model differs" in error_line(err)
    # ram:// says a path exists when any file's name starts with it: nothing is left.
    assert not tf.io.gfile.exists(bucket)


def test_something_an_export_does_not_write_is_not_replaced(capsys, src):
    dst = f"{_bucket()}/m.keras"
    with tf.io.gfile.GFile(dst, "wb") as handle:
        handle.write(b"my notes")
    code, _, err = _export(capsys, src, dst, "--force")
    assert code == 1 and "is not a .keras file" in error_line(err)
    with tf.io.gfile.GFile(dst, "rb") as handle:
        assert handle.read() == b"my notes"
