"""``archdsl compile``: spec -> standalone PyTorch file (or ONNX model).

Importing this module registers the subcommand and does not import torch; the command imports it
only when it needs to run the model (``--target onnx``, ``--check-against``).
"""

from __future__ import annotations

import argparse
import sys

from .. import cli
from ..diagnostics import Diagnostic, Loc, SourceCache


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compile`` subcommand to the archdsl parser."""
    p = sub.add_parser("compile", help="compile a spec to a standalone PyTorch file (or ONNX)",
                       description="Compile SPEC to a standalone PyTorch module file that imports only torch.")
    p.add_argument("spec", metavar="SPEC", help=cli.SPEC_HELP)
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout for --target pytorch)")
    cli._add_common(p)
    p.add_argument("--target", choices=("pytorch", "onnx"), default="pytorch",
                   help="pytorch: a .py file (default); onnx: an ONNX model (needs the onnx extra)")
    p.add_argument("--fold-bn", action="store_true",
                   help="inference build: fold every batch norm that follows a convolution into it")
    p.add_argument("--check-against", metavar="PKG:MODEL",
                   help="load the reference's weights strictly and compare outputs, e.g. torchvision:resnet50")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: the exporter's)")
    p.add_argument("--verbose", action="store_true",
                   help="--target onnx: show what torch's exporter prints and warns (by default counted in one line)")
    cli._add_listing_options(p)
    p.set_defaults(func=cmd_compile)


def _fail(diags: list[Diagnostic], sources: SourceCache | None = None,
          listing: cli.Listing = cli.DEFAULT_LISTING) -> int:
    cli._print_diags(diags, sources or SourceCache(), listing=listing)
    return cli.EXIT_ERRORS


def cmd_compile(args: argparse.Namespace) -> int:
    """Run ``archdsl compile``."""
    from ..io import report_written, write_atomic
    from .codegen import CodegenError, generate

    res = cli._analyze(args.spec, args)
    listing = cli.listing_of(args)
    if not res.ok or res.graph is None:
        return _fail(res.diags.sorted() or [Diagnostic("E114", "not a network (a library of blocks?)",
                                                       Loc(args.spec, 1, 1))], res.sources, listing)
    notes = [d for d in res.diags.sorted() if not d.is_error]
    try:
        source = generate(res.graph, source_name=args.spec, fold_bn=args.fold_bn)
    except CodegenError as exc:
        return _fail(sorted([*notes, *exc.diagnostics], key=Diagnostic.sort_key), res.sources, listing)
    if args.fold_bn:
        notes = sorted([*notes, *_unfolded(res.graph)], key=Diagnostic.sort_key)
    if notes:
        cli._print_diags(notes, res.sources, listing=listing)
    if args.target == "onnx" and not args.output:
        return _fail([Diagnostic("E340", "--target onnx needs -o OUT.onnx", Loc("<command line>", 1, 1))])
    status = cli.EXIT_OK
    if args.check_against or args.target == "onnx":
        try:
            model = _build(source, args.spec, res.graph.name)
        except ImportError:
            return _fail([_no_torch(args)])
        if args.target == "onnx" and (missing := _onnx_missing()):
            return _fail([missing])
        if args.check_against:
            status = _check_against(model, args.check_against, res.graph)
            if status != cli.EXIT_OK:
                return status
    try:
        if args.target == "onnx":
            from .onnx_export import OnnxUnavailable, export_onnx

            try:
                result = export_onnx(model, tuple(res.graph.input_shape), opset=args.opset,
                                     quiet=not args.verbose, progress=cli.status)
            except OnnxUnavailable as exc:
                return _fail([_extra_diagnostic("E342", exc)])
            if result.hidden:
                n = len(result.hidden)
                cli.status(f"{n} message{'s' if n != 1 else ''} from the exporter not shown (--verbose shows "
                           f"{'it' if n == 1 else 'them'})")
            _write(write_atomic, args.output, result.data)
            detail = f"{len(result.data):,} bytes; onnx.checker ok"
            if result.max_abs_diff is not None:
                detail += f"; onnxruntime vs PyTorch max |diff| {result.max_abs_diff:.2g}"
            report_written(args.output, detail)
        elif args.output and args.output != "-":
            _write(write_atomic, args.output, source)
            report_written(args.output)
        else:
            sys.stdout.write(source)
    except OSError as exc:
        return _fail([Diagnostic("E005", f"cannot write {args.output}: {exc.strerror or exc}",
                                 Loc(args.output or "-", 1, 1))])
    return status


def _write(write_atomic, path: str, data) -> None:
    """Atomic write, then the permissions a plain ``open(path, "w")`` would give (umask applied)."""
    import os

    write_atomic(path, data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _extra_diagnostic(code: str, exc, prefix: str = "") -> Diagnostic:
    """An optional package's problem (:class:`~archdsl.backends.extras.ExtraUnavailable`) as a diagnostic
    on the command line: the message, the install command as the hint, why as a note."""
    return Diagnostic(code, prefix + exc.message, Loc("<command line>", 1, 1), hint=exc.hint,
                      notes=(exc.note,) if exc.note else ())


def _no_torch(args: argparse.Namespace) -> Diagnostic:
    """E341: PyTorch is missing; the hint installs the Quick start's CPU build, or the reference set."""
    from .extras import REFERENCE_VENV

    flag = "--check-against" if args.check_against else "--target onnx"
    return Diagnostic("E341", f"{flag} needs PyTorch, which is not installed", Loc("<command line>", 1, 1),
                      hint=REFERENCE_VENV if args.check_against else "pip install torch==2.13.0")


def _onnx_missing() -> Diagnostic | None:
    """E342 when an ONNX package is missing, found before the model is exported (which takes seconds)."""
    from .onnx_export import OnnxUnavailable, require_packages

    try:
        require_packages()
    except OnnxUnavailable as exc:
        return _extra_diagnostic("E342", exc)
    return None


def _build(source: str, spec: str, name: str):
    from .runtime import load_module

    module = load_module(source, spec, name)
    return module.__dict__[module.ARCHDSL_NET]()


def _unfolded(graph) -> list[Diagnostic]:
    """Info diagnostics, at the spec line, for batch norms that cannot be folded."""
    from .codegen import Generator

    gen = Generator(graph)
    gen.analyze()
    diags = []
    for bn, conv in sorted(gen.bn_partner.items()):
        if conv is None:
            d = graph.node(bn)
            src = graph.inputs(bn)[0]
            diags.append(Diagnostic("I343", f"batch norm '{d['path']}' kept: it follows "
                                    f"{graph.node(src)['op']}, not a convolution (pre-activation)",
                                    d["loc"], "info", d["path"]))
    return diags


def _check_against(model, ref: str, graph) -> int:
    from .reference import ReferenceUnavailable, compare, reference_model

    aux = tuple(n for n in graph.outputs if n != "main")
    cli.status(f"building the reference {ref}...")
    try:
        ref_model = reference_model(ref, aux=bool(aux))
    except ReferenceUnavailable as exc:
        return _fail([_extra_diagnostic("E344", exc, f"--check-against {ref}: ")])
    cli.status("comparing (strict load_state_dict, eval outputs, one train-mode step)...")
    result = compare(model, ref_model, tuple(graph.input_shape), reference=ref, aux_names=aux)
    print(result, file=sys.stderr)
    return cli.EXIT_OK if result.ok else cli.EXIT_ERRORS


cli._EXTENSIONS.append(register)
