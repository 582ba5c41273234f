"""Support for legacy_share's tests, demo and benchmarks: not part of the product's API.

`legacy_graphs` trains real TF1 RNN graphs and saves them under the variable names of older
TensorFlow versions (the checkpoints users carry); `old_cells` holds the cells and name tables
of those versions. Both need the legacy cells (tf_keras on TensorFlow >= 2.16).

The names below are what tests and scripts need of the process: `tf`, `tf1` and `rnn_cell`
(LegacyKerasError, saying what to do, where TensorFlow cannot serve the legacy cells; imported
on first use), `supports_keras3()`, `keras_in_use()` and `quiet_tensorflow()`.
"""

import importlib as _importlib

from legacy_share._process import keras_in_use, quiet_tensorflow, supports_keras3

__all__ = ["tf", "tf1", "rnn_cell", "keras_in_use", "quiet_tensorflow", "supports_keras3"]


def __getattr__(name):  # TensorFlow is imported on first use of tf, tf1 or rnn_cell
    if name not in ("tf", "tf1", "rnn_cell"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_importlib.import_module("legacy_share._tf"), name)
