"""Runs many `legacy-share` command lines one after another in ONE fresh process.

    python tests/cli_batch_worker.py CASES.json RESULTS.jsonl

CASES.json: [[arg, ...], ...]. For each case, `cli.main(argv)` runs with file descriptors 1 and 2
sent to files (so TensorFlow's native writes are caught too) and the peak RSS reset first
(/proc/self/clear_refs), and one line is appended to RESULTS.jsonl at once:
{"code", "stderr", "growth_mib"}: how far the case's peak RSS rose above the RSS it started
from (TensorFlow is imported before the first case), so memory a case keeps does not count
against the next. A case that crashes the process leaves the lines before it.
"""

import json
import os
import signal
import sys
import tempfile

TIMEOUT = 120  # s per case; a blocked read (a FIFO) is interrupted and reported as "timeout"


class _Timeout(BaseException):
    pass


def _on_alarm(signal_number, frame):  # pylint: disable=unused-argument
    raise _Timeout()


def _memory_mib(field):
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"/proc/self/status has no {field}")


def _run(cli, argv):
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # VmHWM := the current RSS, so the peak is this case's
    start = _memory_mib("VmRSS")
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(null.fileno(), 1)
        os.dup2(err.fileno(), 2)
        signal.alarm(TIMEOUT)
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse: usage errors
            code = exc.code
        except _Timeout:
            code = "timeout"
        except BaseException as exc:  # pylint: disable=broad-except
            code = f"raised {type(exc).__name__}: {exc}"
        finally:
            signal.alarm(0)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return {"code": code, "stderr": stderr, "growth_mib": _memory_mib("VmHWM") - start}


def main(cases_path, results_path):
    signal.signal(signal.SIGALRM, _on_alarm)
    # pylint: disable=import-outside-toplevel,unused-import
    from legacy_share import _process, cli
    _process.prepare_tensorflow()
    import legacy_share.migration
    import legacy_share.verifying
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    with open(results_path, "a", encoding="utf-8") as results:
        for argv in cases:
            results.write(json.dumps(_run(cli, argv)) + "\n")
            results.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
