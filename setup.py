"""Distribution `legacy-share`: TF1 weight sharing for RNN cells and a checkpoint migrator."""

import pathlib

from setuptools import find_packages, setup

setup(
    name="legacy-share",
    version="0.1.0",
    description="Share TF1 RNN cell weights across layers and migrate per-layer checkpoints.",
    long_description=pathlib.Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["legacy_share", "legacy_share.*"]),
    python_requires=">=3.9",
    install_requires=[
        "tensorflow>=2.12,<2.22",
        # TF >= 2.16 serves tf.compat.v1.nn.rnn_cell from tf_keras. Each tf_keras >= 2.16 pins
        # its own TensorFlow minor; 2.14.1 and 2.15.0 pin nothing and are inert on TF < 2.16.
        "tf_keras>=2.14.1,<2.22",
        "numpy",
        "tqdm",
        # CRC32C of V2 index blocks at C speed (falls back to its own pure-Python code only
        # where its extension cannot load), and user regexes matched with a time limit.
        "google-crc32c>=1.5",
        "regex>=2022.1.18",
    ],
    # legacy_share.slim never imports tf_slim (its init_fn is for tf-slim's training loop, and
    # needs only TensorFlow): `legacy-share[slim]` installs tf-slim beside it for that loop.
    # jax: tests load exported .keras files on Keras 3's JAX backend (skipped without it);
    # tf-slim: tests/test_slim.py runs the init_fn inside slim itself.
    extras_require={"slim": ["tf-slim>=1.1"],
                    "test": ["pytest", "pytest-xdist", "hypothesis", "jax[cpu]", "tf-slim>=1.1"]},
    entry_points={"console_scripts": ["legacy-share=legacy_share.__main__:run"]},
)
