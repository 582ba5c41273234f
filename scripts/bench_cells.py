"""Step and graph-build times of shared cells and of the nested encoder against their baselines.

Run as scripts/bench_cells [--blocks 7] [--block 10] [--words 10,50,200]; see --help.
A step is one forward + backward + SGD update (`session.run(train_op)`, or a `tf.function` for
Keras). Timed in blocks of `--block` steps that alternate between the two contenders; the
tables show the median block divided by its steps. Inputs are constants in the graph.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # pylint: disable=wrong-import-position

import legacy_share  # pylint: disable=wrong-import-position

tf = legacy_share.prepare_tensorflow(prog="bench_cells")
tf1 = tf.compat.v1
rnn_cell = tf1.nn.rnn_cell

import numpy as np  # pylint: disable=wrong-import-position
from legacy_share.cells import SharedGRUCell  # pylint: disable=wrong-import-position
from legacy_share.nested import hierarchical_rnn  # pylint: disable=wrong-import-position

LEARNING_RATE = 0.01


class Contender:
    """A built graph (or Keras step): `build_seconds`, `first_seconds`, `step()`."""

    def __init__(self, name, build_seconds, first_seconds, step, close=lambda: None):
        self.name = name
        self.build_seconds = build_seconds
        self.first_seconds = first_seconds
        self.step = step
        self.close = close


def graph_contender(name, build_loss):
    """Builds `build_loss()` plus an SGD train op in a fresh graph; times build and first run."""
    start = time.perf_counter()
    graph = tf1.Graph()
    with graph.as_default():
        loss = build_loss()
        train = tf1.train.GradientDescentOptimizer(LEARNING_RATE).minimize(loss)
        init = tf1.global_variables_initializer()
    built = time.perf_counter() - start
    session = tf1.Session(graph=graph)
    start = time.perf_counter()
    session.run(init)
    session.run(train)
    first = time.perf_counter() - start
    return Contender(name, built, first, lambda: session.run(train), session.close)


def keras_contender(name, batch, words, chars, depth, char_units, word_units):
    """tf_keras TimeDistributed(GRU) then GRU, same shapes and GRU equations as the TF1 cells."""
    import tf_keras as keras  # pylint: disable=import-outside-toplevel
    start = time.perf_counter()
    model = keras.Sequential([
        keras.Input((words, chars, depth), batch_size=batch),
        keras.layers.TimeDistributed(keras.layers.GRU(char_units, reset_after=False)),
        keras.layers.GRU(word_units, return_sequences=True, reset_after=False),
    ])
    optimizer = keras.optimizers.SGD(LEARNING_RATE)
    inputs = tf.constant(_random((batch, words, chars, depth)))

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(inputs, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    built = time.perf_counter() - start
    start = time.perf_counter()
    train().numpy()
    first = time.perf_counter() - start
    return Contender(name, built, first, lambda: train().numpy())


def _random(shape):
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def stack_loss(shared, batch, steps, units, layers):
    def build():
        inputs = tf.constant(_random((batch, steps, units)))
        if shared:
            cell = rnn_cell.MultiRNNCell([SharedGRUCell(units)] * layers)
        else:
            cell = rnn_cell.MultiRNNCell([rnn_cell.GRUCell(units) for _ in range(layers)])
        outputs, _ = tf1.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)
        return tf.reduce_mean(tf.square(outputs))
    return build


def nested_loss(mode, batch, words, chars, depth, char_units, word_units):
    def build():
        inputs = tf.constant(_random((batch, words, chars, depth)))
        _, outputs, _ = hierarchical_rnn(SharedGRUCell(char_units), SharedGRUCell(word_units),
                                         inputs, mode=mode)
        return tf.reduce_mean(tf.square(outputs))
    return build


def race(a, b, blocks, block):
    """Alternates timed blocks of `block` steps (a b, b a, ...) -> (median a, median b) seconds/step."""
    for contender in (a, b):  # warm-up outside the timing
        for _ in range(2):
            contender.step()
    times = {a.name: [], b.name: []}
    for index in range(blocks):
        for contender in ((a, b) if index % 2 == 0 else (b, a)):
            start = time.perf_counter()
            for _ in range(block):
                contender.step()
            times[contender.name].append((time.perf_counter() - start) / block)
    return statistics.median(times[a.name]), statistics.median(times[b.name])


def ms(seconds):
    return f"{seconds * 1e3:.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/bench_cells", description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=7, help="timed blocks per contender (7)")
    parser.add_argument("--block", type=int, default=10, help="steps per block (10)")
    parser.add_argument("--builds", type=int, default=3,
                        help="graph builds per contender, alternated (3); 1 above 100 words")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="time steps of the stack (50)")
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--words", default="10,50,200", help="word counts of the nested encoder")
    parser.add_argument("--nested-batch", type=int, default=32)
    parser.add_argument("--chars", type=int, default=12)
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--char-units", type=int, default=64)
    parser.add_argument("--word-units", type=int, default=128)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: stack,nested,keras")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    print("\n".join(bc.machine()))
    print(f"blocks {args.blocks} x {args.block} steps, alternating; medians")
    out = []
    started = time.perf_counter()

    if "stack" not in skip:
        shape = (args.batch, args.steps, args.units, args.layers)
        shared = graph_contender("shared", stack_loss(True, *shape))
        plain = graph_contender("plain", stack_loss(False, *shape))
        t_shared, t_plain = race(shared, plain, args.blocks, args.block)
        shared.close()
        plain.close()
        ratio = t_shared / t_plain
        out.append(f"MultiRNNCell of {args.layers} GRU layers, {args.units} units, batch "
                   f"{args.batch}, {args.steps} steps; forward + backward + SGD")
        out.append(bc.table(
            ["cell", "step ms", "ratio shared / plain (<= 1.05)"],
            [["MultiRNNCell([SharedGRUCell(n)] * k)", ms(t_shared),
              f"{ratio:.3f} {'ok' if ratio <= 1.05 else 'MISSED'}"],
             ["MultiRNNCell([GRUCell(n) for _ in range(k)])", ms(t_plain), ""]]))
        print(out[-1])

    nested_shape = (args.nested_batch, args.chars, args.depth, args.char_units, args.word_units)
    if "nested" not in skip:
        rows = []
        for words in [int(w) for w in args.words.split(",")]:
            builds = {"batched": [], "cloned": []}
            keep = {}
            for repeat in range(args.builds if words <= 100 else 1):
                for mode in (("batched", "cloned") if repeat % 2 == 0 else ("cloned", "batched")):
                    if mode in keep:
                        keep.pop(mode).close()
                    batch, chars, depth, cu, wu = nested_shape
                    contender = graph_contender(mode, nested_loss(mode, batch, words, chars, depth,
                                                                  cu, wu))
                    builds[mode].append((contender.build_seconds, contender.first_seconds))
                    keep[mode] = contender
            t_b, t_c = race(keep["batched"], keep["cloned"], args.blocks, args.block)
            for contender in keep.values():
                contender.close()
            med = {m: (statistics.median(b for b, _ in v), statistics.median(f for _, f in v))
                   for m, v in builds.items()}
            rows.append([words, len(builds["batched"]),
                         f"{med['batched'][0]:.2f} / {med['cloned'][0]:.2f}",
                         f"{med['batched'][1]:.2f} / {med['cloned'][1]:.2f}",
                         f"{ms(t_b)} / {ms(t_c)}", f"{t_b / t_c:.2f}",
                         f"{(med['batched'][0] + med['batched'][1]) / (med['cloned'][0] + med['cloned'][1]):.3f}"])
            print(rows[-1], flush=True)
        out.append(f"hierarchical_rnn, batch {args.nested_batch}, {args.chars} chars of depth "
                   f"{args.depth}, SharedGRUCell({args.char_units}) then "
                   f"SharedGRUCell({args.word_units}); build = graph + gradients + SGD op, "
                   f"first = init + first step (session setup, Grappler)")
        out.append(bc.table(["words", "builds", "build s batched / cloned",
                             "first run s batched / cloned", "step ms batched / cloned",
                             "step ratio b/c", "(build+first) ratio b/c"], rows))
        print(out[-1])

    if "keras" not in skip:
        rows = []
        for words in [int(w) for w in args.words.split(",")]:
            batch, chars, depth, cu, wu = nested_shape
            ours = graph_contender("batched", nested_loss("batched", batch, words, chars, depth,
                                                          cu, wu))
            keras = keras_contender("keras", batch, words, chars, depth, cu, wu)
            t_b, t_k = race(ours, keras, args.blocks, args.block)
            ours.close()
            rows.append([words, f"{ours.build_seconds:.2f} / {keras.build_seconds:.2f}",
                         f"{ours.first_seconds:.2f} / {keras.first_seconds:.2f}",
                         f"{ms(t_b)} / {ms(t_k)}", f"{t_b / t_k:.2f}"])
            print(rows[-1], flush=True)
        out.append("hierarchical_rnn batched (TF1 Session) against tf_keras TimeDistributed(GRU) "
                   "then GRU (reset_after=False, the TF1 GRUCell equations; tf.function step with "
                   "GradientTape + SGD), same shapes")
        out.append(bc.table(["words", "build s batched / keras", "first run s batched / keras",
                             "step ms batched / keras", "step ratio batched / keras"], rows))
        print(out[-1])

    print()
    print("\n\n".join(out))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
