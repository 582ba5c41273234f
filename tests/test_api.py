"""The public face: every exported name resolves, and importing the package stays light."""

import glob
import os
import re
import subprocess
import sys

import legacy_share


def test_every_exported_name_resolves():
    for name in legacy_share.__all__:
        assert getattr(legacy_share, name) is not None, name
    assert set(legacy_share.__all__) <= set(dir(legacy_share))


def test_errors_form_one_tree():
    errors = [getattr(legacy_share, n) for n in legacy_share.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, legacy_share.Error) for e in errors)


def test_import_sets_the_switch_without_importing_tensorflow():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = ("import os, sys, legacy_share; "
            "print('tensorflow' in sys.modules, os.environ.get('TF_USE_LEGACY_KERAS'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "1"]


def test_tests_scripts_and_examples_use_the_public_api():
    """What they need of the process comes from `legacy_share.prepare_tensorflow` and
    `legacy_share.testing`, never from the private `_tf` / `_process` modules."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    private = re.compile(r"legacy_share\._(tf|process)\b"
                         r"|from legacy_share import .*\b_(tf|process)\b")
    found = []
    for folder in ("tests", "scripts", "examples"):
        for path in sorted(glob.glob(os.path.join(root, folder, "*"))):
            if os.path.isfile(path) and not path.endswith((".index", ".meta")) \
                    and ".data-" not in path and os.path.basename(path) != "checkpoint":
                with open(path, encoding="utf-8", errors="replace") as handle:
                    found += [f"{path}:{n}" for n, line in enumerate(handle, 1)
                              if private.search(line)]
    assert found == []
    assert "prepare_tensorflow" in legacy_share.__all__ and "cudnn" in legacy_share.__all__
