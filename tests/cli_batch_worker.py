"""Runs many `legacy-share` command lines one after another in ONE fresh process.

    python tests/cli_batch_worker.py CASES.json RESULTS.jsonl

CASES.json: [[arg, ...], ...]. TensorFlow is imported first; then for each case, `cli.main(argv)`
runs with file descriptor 1 sent to /dev/null and 2 to RESULTS.jsonl.<i>.err (so TensorFlow's
native writes are caught too, and a crash leaves its last words there), after the peak RSS was
reset (/proc/self/clear_refs), and one line is appended to RESULTS.jsonl at once:
{"code", "stderr", "peak_mib", "growth_mib"}: the process's peak RSS during the case (at least
the RSS it started from, so memory earlier cases kept counts against it: never less than a
fresh process would show) and how far the case raised it. A case still running after TIMEOUT
seconds is stopped: a blocking read by SIGALRM ("timeout"), a hang in native code by
faulthandler, which dumps the stacks to the case's .err file and ends the process.
"""

import faulthandler
import json
import os
import signal
import sys

TIMEOUT = 120  # s per case


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


def _run(cli, argv, err_path):
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # VmHWM := the current RSS, so the peak is this case's
    start = _memory_mib("VmRSS")
    saved = [os.dup(1), os.dup(2)]
    with open(err_path, "w+b") as err, open(os.devnull, "wb") as null:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(null.fileno(), 1)
        os.dup2(err.fileno(), 2)
        signal.alarm(TIMEOUT)
        faulthandler.dump_traceback_later(TIMEOUT + 10, exit=True, file=err)
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse: usage errors
            code = exc.code
        except _Timeout:
            code = "timeout"
        except BaseException as exc:  # pylint: disable=broad-except
            code = f"raised {type(exc).__name__}: {exc}"
        finally:
            faulthandler.cancel_dump_traceback_later()
            signal.alarm(0)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    peak = _memory_mib("VmHWM")
    return {"code": code, "stderr": stderr, "peak_mib": peak, "growth_mib": peak - start}


def main(cases_path, results_path):
    signal.signal(signal.SIGALRM, _on_alarm)
    # pylint: disable=import-outside-toplevel,unused-import
    import legacy_share
    from legacy_share import cli
    legacy_share.prepare_tensorflow()
    import legacy_share.migration
    import legacy_share.verifying
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    with open(results_path, "a", encoding="utf-8") as results:
        for index, argv in enumerate(cases):
            results.write(json.dumps(_run(cli, argv, f"{results_path}.{index}.err")) + "\n")
            results.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
