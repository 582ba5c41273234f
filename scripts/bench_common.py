"""Shared helpers of scripts/bench_migrate and scripts/bench_cells: timing, peak RSS, tables.

Each measured command runs as its own child process, reaped with `os.wait4`, whose rusage is
that child's alone (and its reaped descendants'): `ru_maxrss` is then its own peak RSS, not the
maximum over every child this process ever had (what RUSAGE_CHILDREN would give).
"""

import os
import platform
import statistics
import subprocess
import sys
import time

__all__ = ["Measure", "run_measured", "median", "machine", "table", "mib", "free_bytes"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Measure:
    """One run of a command: `seconds` (wall), `peak_rss` (bytes), `returncode`, `stderr` tail."""

    def __init__(self, seconds, peak_rss, returncode, stderr=""):
        self.seconds = seconds
        self.peak_rss = peak_rss
        self.returncode = returncode
        self.stderr = stderr

    def __repr__(self):
        return (f"Measure({self.seconds:.2f} s, {mib(self.peak_rss):.0f} MiB, "
                f"rc={self.returncode})")


def run_measured(argv, env=None, cwd=None, expect_fail=False):
    """Runs `argv`, returns its Measure; raises RuntimeError when it fails (unless `expect_fail`)."""
    environment = dict(os.environ)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    environment.update(env or {})
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=environment, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    # Read stderr from a thread-free loop: children of these benchmarks write little to it.
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    measure = Measure(seconds, usage.ru_maxrss * 1024, process.returncode, "\n".join(text[-3:]))
    if (measure.returncode != 0) != expect_fail:
        what = "succeeded" if expect_fail else f"failed (exit {measure.returncode})"
        raise RuntimeError(f"{' '.join(argv)} {what}:\n" + "\n".join(text[-20:]))
    return measure


def median(values):
    return statistics.median(values)


def mib(nbytes):
    return nbytes / 2**20


def free_bytes(path):
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def machine():
    """Lines describing the machine: cores, CPU model, memory, Python, TensorFlow (imported here)."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            memory = f"{int(handle.readline().split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = subprocess.run(
        [sys.executable, "-c", "import os; os.environ.setdefault('TF_USE_LEGACY_KERAS', '1'); "
         "import numpy, tensorflow as tf; print(tf.__version__, numpy.__version__)"],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True,
        check=False).stdout.split()
    tf_version, np_version = (versions + ["?", "?"])[:2]
    return [
        f"cores: {os.cpu_count()} ({model}), memory {memory}",
        f"python {platform.python_version()}, tensorflow {tf_version}, numpy {np_version}, "
        f"{platform.platform()}",
    ]


def table(header, rows):
    """A Markdown table (also readable as plain text)."""
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    line = lambda row: "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(row) for row in rows])
