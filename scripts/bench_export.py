"""Wall time and peak RSS of `legacy-share export` against loading the same weights by hand.

Run as scripts/bench_export [--size 4x2048] [--repeats 3] [--out bench-out]. Contenders, each
its own process, alternating, medians:
  a: `legacy-share export SRC DST.keras` (Keras 3; reads through the plan, writes, reloads the
     file and proves it against the float64 NumPy equations)
  b: by hand: `tf.train.load_checkpoint`, a Keras 3 model of GRU(reset_after=False) layers,
     `set_weights` with the docs/keras.md mapping, `model.save` (no check)
  c: import TensorFlow and Keras 3 only (the floor)
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
TASKS = os.path.join(HERE, "bench_tasks.py")
KERAS3 = {"TF_USE_LEGACY_KERAS": ""}  # an empty switch is off: TensorFlow serves Keras 3


def by_hand(src, dst, layers, units):
    """What a user writes without legacy_share, for a per-layer GRU stack of today's names."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import keras  # pylint: disable=import-outside-toplevel

    reader = tf.train.load_checkpoint(src)
    layers, n = int(layers), int(units)
    x = inputs = keras.Input((None, n))
    grus = []
    for _ in range(layers):
        grus.append(keras.layers.GRU(n, reset_after=False, return_sequences=True))
        x = grus[-1](x)
    model = keras.Model(inputs, x)
    for i, gru in enumerate(grus):
        scope = f"rnn/multi_rnn_cell/cell_{i}/gru_cell"
        g = reader.get_tensor(f"{scope}/gates/kernel")
        c = reader.get_tensor(f"{scope}/candidate/kernel")
        gb = reader.get_tensor(f"{scope}/gates/bias")
        cb = reader.get_tensor(f"{scope}/candidate/bias")
        d = g.shape[0] - n
        gru.set_weights([np.concatenate([g[:d, n:], g[:d, :n], c[:d]], axis=1),
                         np.concatenate([g[d:, n:], g[d:, :n], c[d:]], axis=1),
                         np.concatenate([gb[n:], gb[:n], cb])])
    model.save(dst)


def import_keras():
    import keras  # pylint: disable=import-outside-toplevel,unused-import


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/bench_export",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="4x2048", help="LAYERSxUNITS of the GRU (default 4x2048, "
                                                          "1.2 GB with Adam)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command (default 3)")
    parser.add_argument("--out", default=os.path.join(bc.ROOT, "bench-out"),
                        help="folder for the generated checkpoint, removed at the end")
    args = parser.parse_args(argv)
    layers, units = (int(v) for v in args.size.split("x"))
    cli = os.path.join(os.path.dirname(sys.executable), "legacy-share")
    os.makedirs(args.out, exist_ok=True)
    print("\n".join(bc.machine()))
    work = tempfile.mkdtemp(prefix="export-", dir=args.out)
    started = time.perf_counter()
    try:
        src = os.path.join(work, "legacy.ckpt")
        gen = bc.run_measured([sys.executable, TASKS, "generate", src, str(layers), str(units)])
        size = sum(os.path.getsize(os.path.join(work, f)) for f in os.listdir(work))
        print(f"generated {layers}x{units} ({size / 1e9:.2f} GB) in {gen.seconds:.1f} s")
        me = os.path.abspath(__file__)
        commands = {
            "a: legacy-share export (proof on)": (
                lambda: [cli, "export", src, os.path.join(work, "a.keras"), "--force"], {}),
            "b: load_checkpoint + set_weights": (
                lambda: [sys.executable, me, "by-hand", src, os.path.join(work, "b.keras"),
                         str(layers), str(units)], KERAS3),
            "c: import TF + Keras 3": (lambda: [sys.executable, me, "import-keras"], KERAS3),
        }
        runs = {name: [] for name in commands}
        names = list(commands)
        for repeat in range(args.repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                argv_, env = commands[name]
                measure = bc.run_measured(argv_(), env=env)
                runs[name].append(measure)
                print(f"  {name:36s} {measure.seconds:7.2f} s  {bc.mib(measure.peak_rss):7.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [[f"{layers}x{units} ({size / 1e9:.2f} GB)", name, len(m),
             f"{bc.median([x.seconds for x in m]):.2f}",
             f"{bc.mib(bc.median([x.peak_rss for x in m])):.0f}"] for name, m in runs.items()]
    print()
    print(bc.table(["checkpoint", "command", "runs", "median s", "median peak RSS MiB"], rows))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "by-hand":
        by_hand(*sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "import-keras":
        import_keras()
    else:
        main()
