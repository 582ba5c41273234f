"""Support for legacy_share's tests, demo and benchmarks: not part of the product's API.

`legacy_graphs` trains real TF1 RNN graphs and saves them under the variable names of older
TensorFlow versions (the checkpoints users carry); `old_cells` holds the cells and name tables
of those versions. Both need the legacy cells (tf_keras on TensorFlow >= 2.16).
"""
