"""A character-level word encoder feeding a word-level GRU, trained, saved, reloaded.

Task: tell the tense of a sentence (past: `walked`, present: `walks`) from its characters.
The sentences in examples/data/ come from a small grammar; words ending in -ed (`bed`,
`tired`) or -s (`boats`) that are not verbs are distractors, and the eval file uses only verbs
that never occur in training, so a model that memorised words instead of reading their
characters fails there.

The model is `legacy_share.nested.hierarchical_rnn` with shared GRU cells: it is trained in
`batched` mode (one character RNN over every word of the batch), saved with
tf.compat.v1.train.Saver, and reloaded in fresh graphs in both `cloned` mode (one character
RNN per word position, the TF1 way) and `batched` mode: the same checkpoint serves both.

    .venv/bin/python examples/char_word_encoder.py --steps 300 [--out DIR]
"""

import argparse
import os
import tempfile
import time

import legacy_share

tf = legacy_share.prepare_tensorflow(prog="char_word_encoder")  # start-up noise hidden
tf1 = tf.compat.v1

# pylint: disable=wrong-import-position
import numpy as np

from legacy_share import SharedGRUCell, hierarchical_rnn

tf1.logging.set_verbosity(tf1.logging.ERROR)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
LABELS = ("present", "past")
PAD = 0  # character id 0 pads; real characters start at 1


def read_sentences(path):
    """[(label_id, [word, ...])] from a `label<TAB>sentence` file; `#` lines are comments."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                label, text = line.rstrip("\n").split("\t")
                rows.append((LABELS.index(label), text.split()))
    return rows


def encode(rows, alphabet, max_words, max_chars):
    """Arrays: ids [n, words, chars], char_lengths [n, words], word_lengths [n], labels [n]."""
    n = len(rows)
    ids = np.full((n, max_words, max_chars), PAD, np.int32)
    char_lengths = np.zeros((n, max_words), np.int32)
    word_lengths = np.zeros(n, np.int32)
    labels = np.zeros(n, np.int32)
    for i, (label, words) in enumerate(rows):
        labels[i], word_lengths[i] = label, len(words)
        for w, word in enumerate(words):
            char_lengths[i, w] = len(word)
            ids[i, w, :len(word)] = [alphabet.index(c) + 1 for c in word]
    return ids, char_lengths, word_lengths, labels


def build_model(mode, alphabet_size, max_words, max_chars, embedding_size=16, units=32):
    """Placeholders (ids, char_lengths, word_lengths, labels), logits [batch, 2] and loss."""
    ids = tf1.placeholder(tf.int32, [None, max_words, max_chars], name="ids")
    char_lengths = tf1.placeholder(tf.int32, [None, max_words], name="char_lengths")
    word_lengths = tf1.placeholder(tf.int32, [None], name="word_lengths")
    labels = tf1.placeholder(tf.int32, [None], name="labels")
    embeddings = tf1.get_variable("char_embeddings", [alphabet_size + 1, embedding_size])
    inputs = tf.nn.embedding_lookup(embeddings, ids)  # [batch, words, chars, embedding]
    _, _, word_state = hierarchical_rnn(
        SharedGRUCell(units), SharedGRUCell(units), inputs, char_lengths, word_lengths,
        mode=mode, scope="encoder")
    with tf1.variable_scope("classifier"):
        kernel = tf1.get_variable("kernel", [units, len(LABELS)])
        bias = tf1.get_variable("bias", [len(LABELS)], initializer=tf1.zeros_initializer())
    logits = tf.matmul(word_state, kernel) + bias
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return (ids, char_lengths, word_lengths, labels), logits, loss


def train(args, data, eval_data, shape):
    prefix = os.path.join(args.out, "model.ckpt")
    with tf1.Graph().as_default():
        tf1.set_random_seed(args.seed)
        placeholders, logits, loss = build_model("batched", *shape)
        correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), placeholders[3])
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
        eval_feed = dict(zip(placeholders, eval_data))
        step = tf1.train.get_or_create_global_step()
        train_op = tf1.train.AdamOptimizer(args.learning_rate).minimize(loss, global_step=step)
        print("variables:", ", ".join(v.op.name for v in tf1.trainable_variables()))
        rng = np.random.default_rng(args.seed)
        n = len(data[0])
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            losses = []
            for i in range(1, args.steps + 1):
                batch = rng.choice(n, size=args.batch_size, replace=False)
                feed = dict(zip(placeholders, (a[batch] for a in data)))
                losses.append(session.run([train_op, loss], feed)[1])
                if i % args.print_every == 0 or i == args.steps:
                    print(f"step {i:4d}  train loss {np.mean(losses):.4f}  "
                          f"eval accuracy {session.run(accuracy, eval_feed):.3f}")
                    losses = []
            return tf1.train.Saver().save(session, prefix, global_step=step)


def evaluate(checkpoint, mode, datasets, shape):
    """Accuracy and logits per dataset of the model restored from `checkpoint` in a fresh graph."""
    with tf1.Graph().as_default():
        placeholders, logits, _ = build_model(mode, *shape)
        with tf1.Session() as session:
            tf1.train.Saver().restore(session, checkpoint)  # Adam slots in it are ignored
            results = {}
            for name, data in datasets.items():
                values = session.run(logits, dict(zip(placeholders, data)))
                results[name] = (float(np.mean(values.argmax(-1) == data[3])), values)
            return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--out", default=None, help="checkpoint folder (default: a temp dir)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--print-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out = args.out or tempfile.mkdtemp(prefix="char_word_encoder_")
    os.makedirs(args.out, exist_ok=True)
    start = time.time()

    train_rows = read_sentences(os.path.join(DATA, "tense_train.txt"))
    eval_rows = read_sentences(os.path.join(DATA, "tense_eval.txt"))
    alphabet = sorted({c for _, words in train_rows + eval_rows for w in words for c in w})
    max_words = max(len(words) for _, words in train_rows + eval_rows)
    max_chars = max(len(w) for _, words in train_rows + eval_rows for w in words)
    shape = (len(alphabet), max_words, max_chars)
    train_data = encode(train_rows, alphabet, max_words, max_chars)
    eval_data = encode(eval_rows, alphabet, max_words, max_chars)
    print(f"{len(train_rows)} train / {len(eval_rows)} eval sentences (eval verbs unseen), "
          f"{len(alphabet)} characters, up to {max_words} words of {max_chars} characters")

    checkpoint = train(args, train_data, eval_data, shape)
    print(f"saved {checkpoint}")
    datasets = {"train": train_data, "eval (unseen verbs)": eval_data}
    results = {}
    for mode in ("cloned", "batched"):
        results[mode] = evaluate(checkpoint, mode, datasets, shape)
        print(f"restored into a fresh {mode} graph: " + ", ".join(
            f"{name} accuracy {acc:.3f}" for name, (acc, _) in results[mode].items()))
    difference = max(np.abs(results["cloned"][name][1] - results["batched"][name][1]).max()
                     for name in datasets)
    print(f"largest logit difference between the cloned and batched graphs: {difference:.2e}")
    print(f"done in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
