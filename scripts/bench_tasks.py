"""The commands scripts/bench_migrate measures or prepares, each run in its own process.

  bench_tasks.py classic SRC DST   the baseline: TensorFlow's old converter's approach
  bench_tasks.py copy SRC DIR      the floor: import TensorFlow, copy the checkpoint's files
  bench_tasks.py import-tf         import TensorFlow only (its RSS is subtracted)
  bench_tasks.py generate PREFIX LAYERS UNITS   a big random GRU + Adam checkpoint
  bench_tasks.py migrate-ram SRC  `legacy-share migrate SRC ram://bench/out/model.ckpt`
                                  in this process (ram:// lives in one process; its RSS holds
                                  the output too)
"""

import glob
import os
import shutil
import sys


def classic(src, dst):
    """Reads every tensor into memory, makes one graph variable per output tensor, Saver.save.

    What `tf.contrib.rnn`'s checkpoint_convert did (written here from its description, not its
    code), with the output names and values of `legacy-share migrate --strategy first`.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from legacy_share import planning  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    tf1 = tf.compat.v1
    reader = tf1.train.NewCheckpointReader(src)
    dtypes = reader.get_variable_to_dtype_map()
    values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    specs = [planning.TensorSpec(name, tuple(value.shape), dtypes[name].name)
             for name, value in values.items()]
    plan = planning.plan_migration(specs, strategy="first")
    with tf1.Graph().as_default():
        variables = []
        for step in plan.steps:
            shards = getattr(step, "shards", 1)
            parts = [values[name] for name in step.sources[:shards]]
            value = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
            variables.append(tf1.Variable(value, name=step.name))
        saver = tf1.train.Saver(var_list=variables)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            saver.save(session, dst)


def copy(src, folder):
    import tensorflow  # pylint: disable=import-outside-toplevel,unused-import
    os.makedirs(folder, exist_ok=True)
    for path in glob.glob(glob.escape(src) + ".*"):
        shutil.copyfile(path, os.path.join(folder, os.path.basename(path)))


def import_tf():
    import legacy_share  # pylint: disable=import-outside-toplevel,unused-import
    import tensorflow  # pylint: disable=import-outside-toplevel,unused-import


def generate(prefix, layers, units):
    from legacy_share.testing.legacy_graphs import save_big_gru_checkpoint  # pylint: disable=import-outside-toplevel
    save_big_gru_checkpoint(prefix, layers=int(layers), num_units=int(units), verbose=False)


def migrate_ram(src):
    """Migrates `src` into TensorFlow's in-process ram:// file system, a bucket's stand-in."""
    from legacy_share import cli  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    code = cli.main(["migrate", src, "ram://bench/out/model.ckpt", "--strategy", "first"])
    if code:
        sys.exit(code)
    if not tf.io.gfile.exists("ram://bench/out/model.ckpt.index"):  # a legacy_share before
        sys.exit("migrate-ram: nothing was written to ram://; is PYTHONPATH this checkout?")


TASKS = {"classic": classic, "copy": copy, "import-tf": import_tf, "generate": generate,
         "migrate-ram": migrate_ram}

if __name__ == "__main__":
    TASKS[sys.argv[1]](*sys.argv[2:])
