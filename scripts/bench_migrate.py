"""Wall time and peak RSS of `legacy-share migrate` against the classic converter and a file copy.

Run as scripts/bench_migrate [--sizes 0.3,1.2,4] [--repeats 3] [--out bench-out]; see --help.
Every measured command is its own process; runs alternate (a, b, c, ... then rotated) and the
tables show medians. The page cache is warm: the checkpoint was just written, and the runs
read it again and again.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
TASKS = os.path.join(HERE, "bench_tasks.py")
GB = 1e9
UNITS = 2048

TARGETS = {"a/b time": 0.3, "a/b rss": 0.5, "a/c time": 1.3}


def parse_size(text):
    """`4x2048` (layers x units) or a size in GB (units 2048, layers to fit; below 0.6 GB: 2 layers)."""
    if "x" in text:
        layers, units = text.split("x")
        return int(layers), int(units)
    wanted = float(text) * GB
    per_layer = 6 * UNITS * UNITS * 4 * 3
    if wanted >= 2 * per_layer * 0.9:
        return max(2, round(wanted / per_layer)), UNITS
    units = int(round((wanted / (2 * 6 * 4 * 3)) ** 0.5 / 8) * 8)
    return 2, units


def checkpoint_bytes(layers, units):
    return layers * 6 * units * units * 4 * 3


def largest(layers, units):
    """(largest tensor, largest group = that tensor in every layer) in bytes."""
    tensor = 2 * units * 2 * units * 4
    return tensor, tensor * layers


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/bench_migrate", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0.3,1.2,4",
                        help="checkpoint sizes: GB (0.3) or LAYERSxUNITS (4x2048); comma separated; "
                             "sizes the disk cannot hold are skipped (default 0.3,1.2,4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command (default 3)")
    parser.add_argument("--classic-repeats", type=int, default=None,
                        help="runs of the classic baseline (default: --repeats)")
    parser.add_argument("--out", default=os.path.join(bc.ROOT, "bench-out"),
                        help="folder for the generated checkpoints, removed after each size")
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoints")
    args = parser.parse_args(argv)
    cli = os.path.join(os.path.dirname(sys.executable), "legacy-share")
    python = sys.executable
    os.makedirs(args.out, exist_ok=True)

    print("\n".join(bc.machine()))
    print(f"repeats {args.repeats}; warm page cache; medians; commands alternate in rotated order")
    results = []
    started = time.perf_counter()
    for text in args.sizes.split(","):
        layers, units = parse_size(text.strip())
        nbytes = checkpoint_bytes(layers, units)
        need = nbytes * 2.6 + 2 * GB  # input, tied copy, outputs, classic .meta, margin
        if bc.free_bytes(args.out) < need:
            print(f"skip {layers}x{units} ({nbytes / GB:.2f} GB): needs {need / GB:.1f} GB free "
                  f"in {args.out}, has {bc.free_bytes(args.out) / GB:.1f} GB")
            continue
        work = tempfile.mkdtemp(prefix="migrate-", dir=args.out)
        try:
            results.append(bench_size(python, cli, work, layers, units, args))
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    print()
    print(report(results))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def bench_size(python, cli, work, layers, units, args):
    nbytes = checkpoint_bytes(layers, units)
    src = os.path.join(work, "legacy.ckpt")
    print(f"\n== {layers} layers x {units} units, Adam: {nbytes / GB:.2f} GB -> {work}")
    gen = bc.run_measured([python, TASKS, "generate", src, str(layers), str(units)])
    print(f"generated in {gen.seconds:.1f} s")
    shared = os.path.join(work, "shared", "model.ckpt")
    tied = os.path.join(work, "tied", "model.ckpt")
    bc.run_measured([cli, "migrate", src, shared, "--strategy", "first"])
    unshare = bc.run_measured([cli, "unshare", shared, tied, "--layers", str(layers)])
    print(f"tied variant (migrate first, then unshare --layers {layers}) in {unshare.seconds:.1f} s")

    def out(name):
        folder = os.path.join(work, "out-" + name)
        shutil.rmtree(folder, ignore_errors=True)
        return os.path.join(folder, "model.ckpt")

    commands = {
        "a: migrate first": lambda: [cli, "migrate", src, out("a"), "--strategy", "first"],
        "b: classic": lambda: [python, TASKS, "classic", src, out("b")],
        # ram:// is TensorFlow's in-process file system, a stand-in for a bucket (its RSS holds
        # the whole output, which a bucket would not).
        "migrate first to ram://": lambda: [python, TASKS, "migrate-ram", src],
        "c: import TF + copy": lambda: [python, TASKS, "copy", src, os.path.dirname(out("c"))],
        "import TF": lambda: [python, TASKS, "import-tf"],
        "migrate mean": lambda: [cli, "migrate", src, out("mean"), "--strategy", "mean"],
        "migrate strict (tied)": lambda: [cli, "migrate", tied, out("st"), "--strategy", "strict"],
        "migrate strict (random, fails)": lambda: [cli, "migrate", src, out("sr"), "--strategy",
                                                   "strict"],
    }
    classic_repeats = args.classic_repeats if args.classic_repeats is not None else args.repeats
    runs = {name: [] for name in commands}
    names = list(commands)
    for repeat in range(args.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            if name.startswith("b:") and repeat >= classic_repeats:
                continue
            measure = bc.run_measured(commands[name](), expect_fail="fails" in name)
            runs[name].append(measure)
            print(f"  {name:32s} {measure.seconds:7.2f} s  {bc.mib(measure.peak_rss):7.0f} MiB")
    return {"layers": layers, "units": units, "nbytes": nbytes, "runs": runs}


def report(results):
    """The Markdown tables of all sizes."""
    lines = []
    rows = []
    for result in results:
        size = f"{result['layers']}x{result['units']} ({result['nbytes'] / GB:.2f} GB)"
        for name, measures in result["runs"].items():
            if not measures:
                continue
            rows.append([size, name, len(measures),
                         f"{bc.median([m.seconds for m in measures]):.2f}",
                         f"{bc.mib(bc.median([m.peak_rss for m in measures])):.0f}"])
    lines.append(bc.table(["checkpoint", "command", "runs", "median s", "median peak RSS MiB"], rows))
    lines.append("")
    rows = []
    for result in results:
        med = {name: (bc.median([m.seconds for m in ms]), bc.median([m.peak_rss for m in ms]))
               for name, ms in result["runs"].items() if ms}
        a, b, c = med["a: migrate first"], med["b: classic"], med["c: import TF + copy"]
        tf_rss = med["import TF"][1]
        tensor, group = largest(result["layers"], result["units"])
        bound = 2 * group + 256 * 2**20
        extra = a[1] - tf_rss
        extra_mean = med["migrate mean"][1] - tf_rss
        extra_strict = med["migrate strict (tied)"][1] - tf_rss
        ok = lambda value, limit: f"{value:.2f} {'ok' if value <= limit else 'MISSED'}"
        rows.append([
            f"{result['layers']}x{result['units']} ({result['nbytes'] / GB:.2f} GB)",
            ok(a[0] / b[0], TARGETS["a/b time"]), ok(a[1] / b[1], TARGETS["a/b rss"]),
            ok(a[0] / c[0], TARGETS["a/c time"]),
            f"{bc.mib(extra):.0f} / {bc.mib(extra_mean):.0f} / {bc.mib(extra_strict):.0f}",
            f"{bc.mib(bound):.0f} {'ok' if max(extra, extra_mean, extra_strict) <= bound else 'MISSED'}",
            f"{bc.mib(tensor):.0f} / {bc.mib(group):.0f}",
        ])
    lines.append(bc.table(
        ["checkpoint", "a/b time (<=0.3)", "a/b RSS (<=0.5)", "a/c time (<=1.3)",
         "RSS over TF import MiB: first / mean / strict", "bound 2 x group + 256 MiB",
         "largest tensor / group MiB"], rows))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
