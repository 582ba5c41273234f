"""Shared pytest fixtures: real legacy checkpoints, each generated once per session."""

import os
import signal

import pytest

# A shell starts a background job with SIGINT ignored, and children inherit that: the Ctrl-C
# tests (in this process and in the children they start) need it delivered.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def legacy_stack(tmp_path_factory):
    """`legacy_stack(**kwargs)` -> `legacy_graphs.save_legacy_stack(<own tmp dir>, **kwargs)`, cached.

    Treat the result as read-only: other tests reuse the same files.
    """
    from legacy_share.testing import legacy_graphs  # pylint: disable=import-outside-toplevel

    cache = {}

    def get(**kwargs):
        key = tuple(sorted(kwargs.items()))
        if key not in cache:
            directory = tmp_path_factory.mktemp("legacy_stack")
            cache[key] = legacy_graphs.save_legacy_stack(str(directory), **kwargs)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def v2(legacy_stack):
    """A 2-layer GRU with TF 0.x names and Adam slots, V2 format (read-only)."""
    return legacy_stack(cell="gru", layers=2, num_units=8, generation="tf0", write_version="V2")


@pytest.fixture(scope="session")
def v1(legacy_stack):
    """The same model in the V1 format (read-only)."""
    return legacy_stack(cell="gru", layers=2, num_units=8, generation="tf0", write_version="V1")


@pytest.fixture
def url_never_local(tmp_path, monkeypatch):
    """Runs the test in an empty working folder and fails it if anything appears there: a URL
    taken for a local path (`ram://b/out` as the folder `ram:`) would land there."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield
    assert os.listdir(work) == [], "a URL was written as a local path"
