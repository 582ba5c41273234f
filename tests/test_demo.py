"""The README's main job: the bundled legacy checkpoint and scripts/demo.py end to end."""

import os
import subprocess
import sys

from legacy_share.testing import tf
from tests.file_guard import snapshot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED = os.path.join(REPO, "examples", "legacy_checkpoint")


def test_bundled_checkpoint_is_a_v1_file_with_tf0_names():
    prefix = tf.train.latest_checkpoint(BUNDLED)
    assert os.path.isfile(prefix), "V1 checkpoints are one file named by the prefix"
    names = set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())
    for layer in (0, 1):
        for piece in ("Gates/Linear/Matrix", "Gates/Linear/Bias", "Candidate/Linear/Matrix",
                      "Candidate/Linear/Bias"):
            name = f"RNN/MultiRNNCell/Cell{layer}/GRUCell/{piece}"
            assert {name, name + "/Adam", name + "/Adam_1"} <= names
    assert {"global_step", "beta1_power", "beta2_power", "embedding"} <= names


def test_demo_proves_the_migration_and_leaves_the_bundle_untouched(tmp_path):
    before = snapshot(BUNDLED)
    out = tmp_path / "out" / "shared.ckpt"
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "demo.py"),
                             "--out", str(out)], capture_output=True, text=True, env=env,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.rstrip().splitlines()[-1]
    assert last.startswith("PROVEN: ")
    # The last step: the same checkpoint as a Keras 3 model (tf.keras before TensorFlow 2.16).
    assert ("a Keras 3 model" if tf.__version__ >= "2.16" else "a tf.keras model") in last
    assert "its outputs equal the legacy graph's (max |diff|" in last
    assert os.path.isfile(tmp_path / "out" / "model.keras")
    assert "max |shared - legacy| = " in result.stdout  # the demo fails above 1e-5
    assert result.stderr == ""
    assert os.path.exists(str(out) + ".index")
    assert snapshot(BUNDLED) == before
