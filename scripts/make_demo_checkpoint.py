"""Writes the demo's bundled legacy checkpoint: examples/legacy_checkpoint/.

A 2-layer GRU stack (16 units, input depth 16) under TensorFlow 0.x names
(`RNN/MultiRNNCell/Cell0/GRUCell/Gates/Linear/Matrix`, ...) with an embedding, a softmax
projection and Adam slots, trained 20 steps and saved by a real `Saver` in V1 format.

    .venv/bin/python scripts/make_demo_checkpoint.py [--out examples/legacy_checkpoint]
"""

import argparse
import os
import shutil
import tempfile

from legacy_share.testing import legacy_graphs
from legacy_share.testing import tf1

DEMO_CONFIG = {"cell": "gru", "layers": 2, "num_units": 16, "generation": "tf0",
               "write_version": "V1", "train_steps": 20, "seed": 2016}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "examples", "legacy_checkpoint"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        stack = legacy_graphs.save_legacy_stack(scratch, **DEMO_CONFIG)
        shutil.rmtree(args.out, ignore_errors=True)
        shutil.copytree(scratch, args.out)
    # The Saver recorded the scratch folder's absolute path: point the state file at the copy.
    tf1.train.update_checkpoint_state(args.out, os.path.basename(stack.prefix))
    print(f"wrote {os.path.normpath(args.out)}: {os.path.basename(stack.prefix)}, "
          f"{len(stack.values)} tensors")


if __name__ == "__main__":
    main()
