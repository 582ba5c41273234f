"""Helpers of the tests: save small checkpoints with TF's own Saver, guard the input, run the
command line, read its one error line, and craft V2 index files byte by byte from real ones."""

import contextlib
import glob
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save_variables(folder, variables, write_meta_graph=True, write_version="V2"):
    """Saves {name: value} as variables with a real `Saver` (format `write_version`, "V1" or
    "V2") at folder/model.ckpt -> the prefix."""
    from legacy_share.testing import tf1  # pylint: disable=import-outside-toplevel
    os.makedirs(folder, exist_ok=True)
    with tf1.Graph().as_default():
        for name, value in variables.items():
            tf1.get_variable(name, initializer=value)
        saver = tf1.train.Saver(write_version=getattr(tf1.train.SaverDef, write_version))
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            return saver.save(session, os.path.join(folder, "model.ckpt"),
                              write_meta_graph=write_meta_graph)


def snapshot(*roots):
    """{path: (sha256, size, mtime_ns)} of every file under the folders (or next to the prefixes)
    `roots`; links and FIFOs are recorded by what they are, never opened."""
    found = {}
    for root in roots:
        if os.path.isdir(root):
            paths = [os.path.join(d, f) for d, dirs, files in os.walk(root) for f in files + [
                x for x in dirs if os.path.islink(os.path.join(d, x))]]
        else:
            paths = glob.glob(glob.escape(root) + "*")
        for path in paths:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[path] = ("link", os.readlink(path))
            elif not stat.S_ISREG(info.st_mode):
                found[path] = ("special", stat.S_IFMT(info.st_mode))
            else:
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    for block in iter(lambda h=handle: h.read(1 << 22), b""):
                        digest.update(block)
                found[path] = (digest.hexdigest(), info.st_size, info.st_mtime_ns)
    return found


@contextlib.contextmanager
def untouched(*roots):
    """Asserts that no file under `roots` is changed, added or removed by the body."""
    before = snapshot(*roots)
    assert before, f"nothing to guard under {roots}"
    yield
    assert snapshot(*roots) == before, "the input was modified"


# ------------------------------------------------------------------------- the command line


def run_main(capsys, *argv):
    """`legacy_share.cli.main(ARGV)` in this process -> (exit code, stdout, stderr)."""
    from legacy_share import cli  # pylint: disable=import-outside-toplevel
    try:
        code = cli.main([str(a) if not isinstance(a, str) else a for a in argv])
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _env():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def cli(*argv, timeout=120):
    """`python -m legacy_share ARGV` in a subprocess -> CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "legacy_share"] + [str(a) for a in argv],
                          env=_env(), capture_output=True, text=True, timeout=timeout, check=False)


def cli_async(*argv):
    """`python -m legacy_share ARGV` started in a subprocess -> Popen (text pipes)."""
    return subprocess.Popen([sys.executable, "-m", "legacy_share"] + [str(a) for a in argv],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Run:
    """`python -m legacy_share ARGV` started in a subprocess; `finish()` -> (code, stderr, peak
    RSS in MiB); a run past `timeout` s is killed and its code is "timeout"."""

    def __init__(self, *argv, code=None):
        command = ([sys.executable, "-c", code] if code else
                   [sys.executable, "-m", "legacy_share"] + [str(a) for a in argv])
        # A pipe, not a file: a child under RLIMIT_FSIZE could not write a file past its limit.
        self.process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self._err = []
        self._reader = threading.Thread(target=lambda: self._err.append(self.process.stderr.read()))
        self._reader.start()

    def finish(self, timeout=120):
        deadline = time.monotonic() + timeout
        code = None
        peak = 0.0
        # A caller's poll() may already have reaped the child (it ended before a signal was
        # due); waiting for it again would raise ChildProcessError.
        while self.process.returncode is None:
            peak = max(peak, _high_water_mib(self.process.pid))
            pid, status, _ = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline and code is None:
                self.process.kill()
                code = "timeout"
            time.sleep(0.02)
        code = code or self.process.returncode
        self._reader.join()
        self.process.stderr.close()
        return code, self._err[0].decode("utf-8", "replace"), peak


def run_batch(argvs, folder):
    """`legacy-share ARGV` for each of `argvs`, one after another in ONE fresh process (one
    TensorFlow import for all; see tests/cli_batch_worker.py) -> [(code, stderr, peak MiB,
    MiB the case raised the peak by)].

    For properties that need a process of their own but not one per case: nothing printed
    beyond the one line, exit codes, memory, no crash, no hang. A case that kills the process
    (or hangs it past the worker's time limit) gets the exit code and the last words it wrote;
    the cases after it run in a fresh process.
    """
    worker = os.path.join(REPO, "tests", "cli_batch_worker.py")
    done = []
    while len(done) < len(argvs):
        cases = os.path.join(folder, f"cli-batch-{len(done)}.json")
        results = cases[:-5] + ".jsonl"
        with open(cases, "w", encoding="utf-8") as f:
            json.dump([[str(a) for a in argv] for argv in argvs[len(done):]], f)
        ended = subprocess.run([sys.executable, worker, cases, results], env=_env(),
                               capture_output=True, text=True, check=False)
        with open(results, "a+", encoding="utf-8") as f:
            f.seek(0)
            rows = [json.loads(line) for line in f]
        done += [(r["code"], r["stderr"], r["peak_mib"], r["growth_mib"]) for r in rows]
        if len(done) < len(argvs):  # the process ended in the case after the last row
            last_words = os.path.join(f"{results}.{len(rows)}.err")
            if os.path.exists(last_words):
                with open(last_words, encoding="utf-8", errors="replace") as f:
                    last_words = f.read()
            done.append((f"the process ended with {ended.returncode}",
                         f"{last_words}{ended.stderr}", 0.0, 0.0))
    return done


def _high_water_mib(pid):
    """The peak RSS of `pid` since its exec, in MiB (0 once it has exited).

    Not wait4's ru_maxrss: at exec Linux folds the replaced address space's high-water mark
    into it, so a child of a pytest process that has grown to 1.5 GiB would report 1.5 GiB.
    VmHWM belongs to the child's own address space; read every 20 ms, it misses at most the
    growth of the last 20 ms before exit.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def error_line(stderr):
    """The single error line of a failed run (asserts there is exactly one and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("legacy-share: error: "), stderr
    return lines[0]


def copy_stack(stack, folder):
    """Copies the checkpoint folder of LegacyStack `stack` to `folder` -> the copied prefix."""
    shutil.copytree(os.path.dirname(stack.prefix), folder)
    return os.path.join(folder, os.path.basename(stack.prefix))


# ------------------------------------------------------------------------- outputs

_EXPECTED = {}


def expected_checksums(src, strategy):
    """{name: checksum} of the migration of `src` by `strategy`, computed from the plan (cached)."""
    from legacy_share import migration, values  # pylint: disable=import-outside-toplevel
    from legacy_share.reading import open_checkpoint  # pylint: disable=import-outside-toplevel
    if (src, strategy) not in _EXPECTED:
        plan = migration.plan_checkpoint(src, strategy=strategy)
        reader = open_checkpoint(src)
        _EXPECTED[src, strategy] = {step.name: values.checksum(
            values.step_value(step, reader, plan.strategy)) for step in plan.steps}
    return _EXPECTED[src, strategy]


def tensor_checksums(prefix):
    """{name: checksum} of every tensor of checkpoint `prefix`."""
    from legacy_share import values  # pylint: disable=import-outside-toplevel
    from legacy_share.reading import open_checkpoint  # pylint: disable=import-outside-toplevel
    ckpt = open_checkpoint(prefix)
    return {spec.name: values.checksum(ckpt.read(spec.name)) for spec in ckpt.specs}


def assert_is_migration(src, dst, strategy):
    assert tensor_checksums(dst) == expected_checksums(src, strategy)


def load_fault_kill():
    """scripts/fault_kill as a module."""
    import importlib.machinery  # pylint: disable=import-outside-toplevel
    import importlib.util  # pylint: disable=import-outside-toplevel
    path = os.path.join(REPO, "scripts", "fault_kill")
    loader = importlib.machinery.SourceFileLoader("fault_kill", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("fault_kill", loader))
    loader.exec_module(module)
    return module


# ------------------------------------------------------------------------- crafted indexes


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def write_index(path, entries):
    """Writes the table of `entries` [(key, value)], sorted, in one data block, as TF's table
    builder lays it out (restart array, kind byte, masked CRC32C, footer, magic)."""
    from legacy_share import bundle  # pylint: disable=import-outside-toplevel
    entries = sorted(entries)
    out = bytearray()

    def block(records):
        body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v
                        for k, v in records) + struct.pack("<II", 0, 1)
        offset = len(out)
        out.extend(body + b"\x00" + struct.pack("<I", bundle.masked_crc32c(body + b"\x00")))
        return _varint(offset) + _varint(len(body))

    data = block(entries)
    meta = block([])
    index = block([(entries[-1][0], data)])
    out.extend((meta + index).ljust(40, b"\x00") + bundle.MAGIC)
    with open(path, "wb") as handle:
        handle.write(out)


def change_index(path, change):
    """Rewrites V2 index `path` with `change(entries)` applied: entries is {key: BundleEntryProto}
    (the header is left out and put back)."""
    from legacy_share import bundle  # pylint: disable=import-outside-toplevel
    from tensorflow.core.protobuf import tensor_bundle_pb2  # pylint: disable=import-outside-toplevel
    with open(path, "rb") as handle:
        entries = bundle.table_entries(handle.read())
    header = entries[0]
    protos = {key: tensor_bundle_pb2.BundleEntryProto.FromString(value)
              for key, value in entries[1:]}
    change(protos)
    write_index(path, [header] + [(k, p.SerializeToString()) for k, p in protos.items()])


# ------------------------------------------------------------------------- environment


@contextlib.contextmanager
def tmpfs(path, options):
    """Mounts a tmpfs with `options` at `path` (skips the test unless that works, e.g. as root)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    os.makedirs(path, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path],
                            capture_output=True, text=True, check=False)
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)
