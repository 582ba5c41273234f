"""`legacy-share`: inspect, migrate, verify, unshare and export TF1 RNN checkpoints.

Exit codes: 0 ok, 1 error or failed check, 2 usage.
"""

import argparse
import logging
import os
import signal
import sys
import threading

from legacy_share import _process
from legacy_share import cli_errors
from legacy_share import errors
from legacy_share.cli_values import (clip as _clip, dense as _dense, layer as _layer,
                                     positive as _positive, real as _real, rename as _rename,
                                     strategy as _strategy, tolerance as _tolerance)
from legacy_share.tf_paths import check_literal

__all__ = ["main", "build_parser"]

PROG = cli_errors.PROG


def build_parser():
    """The argparse parser of `legacy-share` and its subcommands."""
    parser = cli_errors.Parser(
        prog=PROG, description="Migrate per-layer TF1 RNN checkpoints to shared-cell names.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    # The same flags after the subcommand; SUPPRESS keeps a flag given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log what is done")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    for add in (_add_inspect, _add_migrate, _add_verify, _add_unshare, _add_export):
        add(commands, common)
    return parser


def _add_inspect(commands, common):
    """`inspect CKPT`: the variables grouped by layer."""
    inspect = commands.add_parser("inspect", parents=[common], help="list variables grouped by layer")
    inspect.add_argument("ckpt", metavar="CKPT", help="checkpoint prefix, folder, or .index file")
    inspect.add_argument("--json", action="store_true",
                         help="print JSON (an error too, as {\"error\", \"file\", \"tensor\"})")
    _add_naming_options(inspect)
    inspect_sharing = inspect.add_mutually_exclusive_group()
    inspect_sharing.add_argument("--share-from", type=_layer, default=0, metavar="K",
                                 help="the ROUTE column as with migrate --share-from K (default 0)")
    inspect_sharing.add_argument("--no-share", action="store_true",
                                 help="the ROUTE column as with migrate --no-share")
    inspect.add_argument("--meta", metavar="OLD.meta",
                         help="the old graph's MetaGraphDef: the layout of cuDNN buffers; "
                              "parsed, never run")
    _add_cudnn_options(inspect)


def _add_migrate(commands, common):
    """`migrate SRC DST`: a shared-cell (or renamed) checkpoint."""
    migrate = commands.add_parser("migrate", parents=[common], help="write a shared-cell checkpoint")
    migrate.add_argument("src", metavar="SRC", help="legacy checkpoint (prefix, folder, .index)")
    migrate.add_argument("dst", metavar="DST", help="output prefix, e.g. out/model.ckpt")
    migrate.add_argument("--strategy", default="first", metavar="first|layer:K|mean|strict",
                         type=_strategy,
                         help="how layers become one tensor (default: first)")
    migrate.add_argument("--tolerance", type=_tolerance, default=0.0, metavar="X",
                         help="max abs difference allowed by --strategy strict (default 0)")
    migrate.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    migrate.add_argument("--json", action="store_true",
                         help="print the plan as JSON (an error too, as {\"error\", \"file\", "
                              "\"tensor\"})")
    migrate.add_argument("--force", action="store_true", help="replace an existing DST")
    _add_naming_options(migrate)
    sharing = migrate.add_mutually_exclusive_group()
    sharing.add_argument("--share-from", type=_layer, default=0, metavar="K",
                         help="keep layers below K per layer, merge layers K and up under layer "
                              "K's name (default 0: merge every layer; 1: layer 0 fed by an "
                              "embedding keeps its own weights)")
    sharing.add_argument("--no-share", action="store_true",
                         help="rename only: every layer keeps its own weights")
    migrate.add_argument("--meta", metavar="OLD.meta",
                         help="the old graph's MetaGraphDef: block-cell settings (cell clip, "
                              "forget bias) become plan notes, cuDNN ops give a buffer's "
                              "layout; parsed, never run")
    _add_cudnn_options(migrate)
    migrate.add_argument("--drop-optimizer-state", action="store_true",
                         help="leave optimizer slots and their globals out")


def _add_verify(commands, common):
    """`verify CKPT --meta GRAPH.meta`: a checkpoint against a graph's variables."""
    verify = commands.add_parser("verify", parents=[common], help="compare a checkpoint with a graph's variables")
    verify.add_argument("ckpt", metavar="CKPT", help="checkpoint prefix, folder, or .index file")
    verify.add_argument("--meta", required=True, metavar="GRAPH.meta",
                        help="MetaGraphDef written by Saver.save / export_meta_graph")
    verify.add_argument("--json", action="store_true", help="print JSON")


def _add_unshare(commands, common):
    """`unshare SRC DST --layers N`: a shared checkpoint per layer again."""
    unshare = commands.add_parser("unshare", parents=[common], help="copy shared cell_0 tensors to every layer")
    unshare.add_argument("src", metavar="SRC", help="shared checkpoint")
    unshare.add_argument("dst", metavar="DST", help="output prefix")
    unshare.add_argument("--layers", required=True, type=_positive, metavar="N",
                         help="number of layers to write")
    unshare.add_argument("--force", action="store_true", help="replace an existing DST")
    unshare.add_argument("--share-from", type=_layer, default=0, metavar="K",
                         help="the inverse of migrate --share-from K: layer K is copied to "
                              "layers K+1..N-1, layers below K are kept (default 0)")
    _add_group(unshare)


def _add_export(commands, common):
    """`export SRC DST`: a Keras model of an RNN checkpoint."""
    export = commands.add_parser("export", parents=[common],
                                 help="write a Keras 3 / tf_keras model of an RNN checkpoint")
    export.add_argument("src", metavar="SRC", help="legacy checkpoint (prefix, folder, .index)")
    export.add_argument("dst", metavar="DST",
                        help="*.keras (whole model), *.weights.h5 (weights), or a folder "
                             "(SavedModel)")
    export.add_argument("--keras", type=int, choices=(3, 2), default=3,
                        help="3: Keras 3 (default); 2: tf_keras")
    export.add_argument("--stack", metavar="SCOPE", action="append",
                        help="the stack to export when there are several; repeated, the stacks "
                             "of one model in the order the data flows")
    export.add_argument("--layers", type=_positive, metavar="K",
                        help="how many times a shared stack runs its one layer (not stored); "
                             "with --cudnn: the cuDNN layers")
    export.add_argument("--custom-cells", action="store_true",
                        help="export LSTMCells with peepholes or projection as LegacyLSTMCell")
    export.add_argument("--forget-bias", type=_real, default=1.0, metavar="F",
                        help="the LSTM forget bias the graph ran with (default 1.0)")
    export.add_argument("--cell-clip", type=_clip, metavar="C",
                        help="the graph's LSTMCell(cell_clip=C) (not stored; needs --custom-cells)")
    export.add_argument("--proj-clip", type=_clip, metavar="P",
                        help="the graph's LSTMCell(proj_clip=P) (not stored; needs --custom-cells)")
    export.add_argument("--embedding", metavar="VAR", help="an embedding table to put before the stack")
    export.add_argument("--dense", type=_dense, metavar="KERNEL[,BIAS]",
                        help="a Dense layer to put after it")
    export.add_argument("--tolerance", type=_tolerance, default=1e-5, metavar="X",
                        help="largest relative difference the proof accepts (default 1e-5)")
    export.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    export.add_argument("--json", action="store_true", help="print JSON")
    export.add_argument("--force", action="store_true", help="replace an existing DST")
    _add_naming_options(export)
    export.add_argument("--meta", metavar="GRAPH.meta",
                        help="the old graph, for the layout of a cuDNN buffer (parsed, never run)")
    _add_cudnn_options(export, layers=False)
    _add_keras_checkpoint_options(export)


def _add_keras_checkpoint_options(export):
    """What a TF 2 tf.keras checkpoint does not store, as the export assumes it (its plan
    lists each); the defaults are Keras's. The values are checked by the plan (exit 1): the
    lists live in legacy_share.keras.tf2_layers, which is not imported before Keras is chosen."""
    group = export.add_argument_group("tf.keras checkpoints (model.save_weights)")
    group.add_argument("--activation", metavar="A",
                       help="every RNN layer's activation (tanh; also sigmoid, relu, linear, ...)")
    group.add_argument("--recurrent-activation", metavar="A",
                       help="every GRU / LSTM layer's (sigmoid)")
    group.add_argument("--return-sequences", action="store_true", default=None,
                       help="the last RNN layer returns every step (default: its last only)")
    group.add_argument("--dense-activation", metavar="A",
                       help="every Dense layer's activation (linear; softmax, ...)")
    group.add_argument("--merge-mode", metavar="concat|sum|mul|ave",
                       help="every Bidirectional's (default: told by the next layer's depth, "
                            "else concat)")
    group.add_argument("--mask-zero", action="store_true", default=None,
                       help="the Embedding masks id 0")
    group.add_argument("--weightless", choices=("dropout",),
                       help="layers without weights are Dropout (identity at inference)")


def _assumptions(args):
    """A tf2_layers.Assumptions of the flags given, or None when none is."""
    fields = ("activation", "recurrent_activation", "return_sequences", "dense_activation",
              "merge_mode", "mask_zero", "weightless")
    given = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    if not given:
        return None
    from legacy_share.keras import tf2_layers  # pylint: disable=import-outside-toplevel
    return tf2_layers.Assumptions(**given)


def main(argv=None):
    """Runs `legacy-share`.

    SIGTERM is handled like Ctrl-C (cleanup, one line), with exit code 143 instead of 130.

    Args:
      argv: the arguments after the program name (default sys.argv[1:]).
    Returns:
      The exit code: 0 ok, 1 an error or a failed check (one line on stderr; with --json also
      {"error", "file", "tensor"} on stdout), 2 usage, 130 / 143 interrupted, 141 (128 +
      SIGPIPE, quietly) when stdout's reader went away. Usage errors raise SystemExit(2) from
      argparse (with --json, after printing the JSON error).
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    args = None
    try:
        args = build_parser().parse_args(argv)
        return _run(args, argv)
    except cli_errors.UsageExit as exc:  # also from a command's own check of its flags
        if cli_errors.asks_json(sys.argv[1:] if argv is None else argv):
            cli_errors.print_json(exc.message, None, None)
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as errors.Interrupted
        return _interrupted(exc, args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args, argv):
    """Runs the parsed command -> its exit code; every error becomes one line (see `main`)."""
    try:
        _process.quiet_tensorflow(args.verbose or args.debug, prog=PROG)
        child = _arrange_keras(args, argv)  # the process export needs, or its exit code elsewhere
        if child is not None:
            return child
        # LegacyKerasError is an ImportError and says what to install.
        _process.import_tensorflow(quiet=not (args.verbose or args.debug))
        code = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed stdout shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return cli_errors.stdout_closed(args)
    except (errors.Error, OSError, ImportError) as exc:
        return cli_errors.fail(exc, args)
    except Exception as exc:  # pylint: disable=broad-except
        # Keras, TensorFlow (an OpError is no OSError), NumPy or h5py failed on an input no check
        # of legacy_share caught, or legacy_share has a bug: still one line, the traceback only
        # with --debug.
        return cli_errors.fail(exc, args, unexpected=True)


def _terminate(signal_number, frame):  # pylint: disable=unused-argument
    raise errors.Interrupted(signal_number)


def _interrupted(exc, args):
    """Says what an interrupt left behind -> exit code 128 + the signal's number."""
    number = getattr(exc, "signal_number", signal.SIGINT)
    written = getattr(exc, "written", None) or getattr(args, "written", None)
    if written:
        what = f"{written} had been written in full and is complete"
    elif getattr(args, "dst", None) and not getattr(args, "dry_run", False):
        what = "the destination was left as it was"
    else:
        what = "nothing was written"
    name = "terminated" if number == signal.SIGTERM else "interrupted"
    print(f"{PROG}: {name}; {what}.", file=sys.stderr)
    return 128 + number


def _inspect(args):
    from legacy_share.migration import inspect_checkpoint  # pylint: disable=import-outside-toplevel
    inspection = inspect_checkpoint(args.ckpt, group_patterns=args.group,
                                    renames=args.rename, excludes=args.exclude,
                                    share=not args.no_share, share_from=args.share_from,
                                    meta=args.meta, **_cudnn_options(args))
    print(inspection.to_json() if args.json else inspection.format_table())
    return 0


def _migrate(args):
    from legacy_share import migration  # pylint: disable=import-outside-toplevel
    if args.tolerance and args.strategy != "strict":
        logging.getLogger("legacy_share").warning(
            "--tolerance applies to --strategy strict only; ignored with %s", args.strategy)
    options = dict(strategy=args.strategy, group_patterns=args.group, renames=args.rename,
                   excludes=args.exclude, drop_optimizer_state=args.drop_optimizer_state,
                   tolerance=args.tolerance, share=not args.no_share,
                   share_from=args.share_from, meta=args.meta, **_cudnn_options(args))
    if args.dry_run:
        check_literal(os.path.abspath(os.path.expanduser(args.dst)), "output")  # as migrate
        plan = migration.plan_checkpoint(args.src, **options)
    else:
        plan = migration.migrate(args.src, args.dst, force=args.force,
                                 progress=not args.json, **options)
        args.written = args.dst  # an interrupt or error from here on finds the output complete
    if args.json:
        print(plan.to_json(dry_run=bool(args.dry_run),
                           destination=None if args.dry_run else args.dst))
    else:
        print(plan.format_table())
        if args.dry_run:
            print(f"dry run: nothing written to {args.dst}")
        else:
            print(f"wrote {args.dst} ({len(plan.steps)} tensor(s), {len(plan.dropped)} dropped)")
    return 0


def _verify(args):
    from legacy_share.verifying import verify_checkpoint  # pylint: disable=import-outside-toplevel
    report = verify_checkpoint(args.ckpt, args.meta)
    print(report.to_json() if args.json else report.format())
    return 0 if report.ok else 1


def _unshare(args):
    from legacy_share import migration  # pylint: disable=import-outside-toplevel
    plan = migration.unshare(args.src, args.dst, args.layers, group_patterns=args.group,
                             force=args.force, progress=True, share_from=args.share_from)
    args.written = args.dst
    print(plan.format_table())
    print(f"wrote {args.dst} ({len(plan.steps)} tensor(s))")
    return 0


def _export(args):
    from legacy_share.keras import exporting  # pylint: disable=import-outside-toplevel
    options = dict(stack=args.stack, layers=args.layers, custom_cells=args.custom_cells,
                   forget_bias=args.forget_bias, embedding=args.embedding, dense=args.dense,
                   group_patterns=args.group, renames=args.rename, excludes=args.exclude,
                   meta=args.meta, cell_clip=args.cell_clip, proj_clip=args.proj_clip,
                   assumptions=_assumptions(args), **_cudnn_options(args))
    if args.dry_run:
        exporting.destination_format(args.dst)
        plan = exporting.plan(args.src, **options)
        if args.json:  # one JSON document: a refusal is its "refusal", not a second one
            print(plan.to_json(dry_run=True, destination=None))
            args.json_printed = True
        else:
            print(plan.format_table())
            print(f"dry run: nothing written to {args.dst}")
        exporting.check_plan(plan)  # the real run's decision: its refusal, exit 1
        return 0
    report = exporting.export(args.src, args.dst, keras=args.keras, tolerance=args.tolerance,
                              force=args.force, **options)
    args.written = report.path
    if args.json:
        print(report.to_json(dry_run=False))
    else:
        print(report.plan.format_table())
        flavour = "Keras 3" if report.flavour == 3 else "tf_keras"
        print(f"proof: {report.proof.describe()}")
        print(f"wrote {report.path} ({report.format}, {flavour})")
    return 0


_COMMANDS = {"inspect": _inspect, "migrate": _migrate, "verify": _verify, "unshare": _unshare,
             "export": _export}


def _arrange_keras(args, argv):
    """For `export`: the Keras it needs in this process, or its exit code from a fresh process.

    TensorFlow chooses Keras 3 or tf_keras once, at its import; when it is already imported
    with the other one (main called from Python), the command runs in a child process.
    """
    if args.command != "export":
        return None
    try:
        _process.arrange_keras(args.keras)
    except errors.LegacyKerasError as exc:
        if "tensorflow" not in sys.modules or (args.keras == 3 and not _process.supports_keras3()):
            return cli_errors.fail(exc, args)
        import subprocess  # pylint: disable=import-outside-toplevel
        env = {k: v for k, v in os.environ.items() if k != _process.LEGACY_KERAS_SWITCH}
        if args.keras == 2:
            env[_process.LEGACY_KERAS_SWITCH] = "1"
        argv = sys.argv[1:] if argv is None else list(argv)
        sys.stdout.flush()
        sys.stderr.flush()
        done = subprocess.run([sys.executable, "-m", "legacy_share"] + argv, env=env,
                              capture_output=True, text=True, check=False)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        return done.returncode
    return None


def _add_naming_options(parser):
    """--group, --rename, --exclude: how names are read, the same for inspect and migrate."""
    _add_group(parser)
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        type=_rename, help="rename path components matching OLD (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="REGEX",
                        help="copy matching tensors untouched (repeatable)")


def _add_cudnn_options(parser, layers=True):
    """--cudnn MODE --layers L --units N --input-size D [--bidirectional], --cudnn-buffer NAME.

    `layers` False: the parser has its own --layers (export's K), which --cudnn reads as L.
    """
    group = parser.add_argument_group(
        "cuDNN buffers", "the layout of an opaque tf.contrib.cudnn_rnn buffer, when neither its "
        "canonical tensors nor --meta tell it")
    group.add_argument("--cudnn", choices=("lstm", "gru", "rnn_tanh", "rnn_relu"),
                       help="the cuDNN mode")
    if layers:
        group.add_argument("--layers", type=_positive, metavar="L", help="with --cudnn: layers")
    group.add_argument("--units", type=_positive, metavar="N", help="with --cudnn: num_units")
    group.add_argument("--input-size", type=_positive, metavar="D",
                       help="with --cudnn: the depth of layer 0's input")
    group.add_argument("--bidirectional", action="store_true", help="with --cudnn: two directions")
    group.add_argument("--cudnn-buffer", metavar="NAME",
                       help="the buffer's tensor name, when it does not give itself away")


def _cudnn_options(args):
    """{cudnn: Layout or None, cudnn_buffer: name or None} from the cuDNN flags."""
    layers = None if args.command == "export" else args.layers  # export: also a shared K
    given = [flag for flag, value in (("--layers", layers), ("--units", args.units),
                                      ("--input-size", args.input_size),
                                      ("--bidirectional", args.bidirectional or None))
             if value is not None]
    if args.cudnn is None:
        if given:
            build_parser().error(f"{', '.join(given)} describe a cuDNN buffer: give --cudnn "
                                 f"MODE with them")
        return dict(cudnn=None, cudnn_buffer=args.cudnn_buffer)
    missing = [flag for flag, value in (("--layers", args.layers), ("--units", args.units),
                                        ("--input-size", args.input_size)) if value is None]
    if missing:
        build_parser().error(f"--cudnn {args.cudnn} needs {', '.join(missing)} too")
    from legacy_share.cudnn import Layout  # pylint: disable=import-outside-toplevel
    layout = Layout(args.cudnn, args.layers, args.units, args.input_size,
                    2 if args.bidirectional else 1)
    return dict(cudnn=layout, cudnn_buffer=args.cudnn_buffer)


def _add_group(parser):
    parser.add_argument("--group", action="append", default=[], metavar="REGEX",
                        help="regex with one capture group for the layer index, e.g. 'word_(\\d+)' "
                             "(repeatable; cell_N and CellN are built in)")
