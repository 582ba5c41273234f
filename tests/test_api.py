"""The public face: every exported name resolves, and importing the package stays light."""

import os
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
