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
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout for --target pytorch)")
    cli._add_common(p)
    p.add_argument("--target", choices=("pytorch", "onnx"), default="pytorch",
                   help="pytorch: a .py file (default); onnx: an ONNX model (needs the onnx extra)")
    p.add_argument("--fold-bn", action="store_true",
                   help="inference build: fold every batch norm that follows a convolution into it")
    p.add_argument("--check-against", metavar="PKG:MODEL",
                   help="load the reference's weights strictly and compare outputs, e.g. torchvision:resnet50")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: the exporter's)")
    cli._add_listing_options(p)
    p.set_defaults(func=cmd_compile)


def _fail(diags: list[Diagnostic], sources: SourceCache | None = None,
          listing: cli.Listing = cli.DEFAULT_LISTING) -> int:
    cli._print_diags(diags, sources or SourceCache(), listing=listing)
    return cli.EXIT_ERRORS


def cmd_compile(args: argparse.Namespace) -> int:
    """Run ``archdsl compile``."""
    from ..io import write_atomic
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
            return _fail([Diagnostic("E341", "this needs PyTorch: pip install torch", Loc("<command line>", 1, 1))])
        if args.check_against:
            status = _check_against(model, args.check_against, res.graph)
            if status != cli.EXIT_OK:
                return status
    try:
        if args.target == "onnx":
            from .onnx_export import OnnxUnavailable, export_onnx

            try:
                result = export_onnx(model, tuple(res.graph.input_shape), opset=args.opset)
            except OnnxUnavailable as exc:
                return _fail([Diagnostic("E342", str(exc), Loc("<command line>", 1, 1))])
            _write(write_atomic, args.output, result.data)
            msg = f"wrote {args.output} ({len(result.data):,} bytes; onnx.checker ok"
            if result.max_abs_diff is not None:
                msg += f"; onnxruntime vs PyTorch max |diff| {result.max_abs_diff:.2g}"
            print(msg + ")", file=sys.stderr)
        elif args.output and args.output != "-":
            _write(write_atomic, args.output, source)
        else:
            sys.stdout.write(source)
    except OSError as exc:
        return _fail([Diagnostic("E005", f"cannot write {args.output}: {exc.strerror or exc}",
                                 Loc(args.output or "-", 0, 0))])
    return status


def _write(write_atomic, path: str, data) -> None:
    """Atomic write, then the permissions a plain ``open(path, "w")`` would give (umask applied)."""
    import os

    write_atomic(path, data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


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
    try:
        ref_model = reference_model(ref, aux=bool(aux))
    except ReferenceUnavailable as exc:
        return _fail([Diagnostic("E344", str(exc), Loc("<command line>", 1, 1))])
    result = compare(model, ref_model, tuple(graph.input_shape), reference=ref, aux_names=aux)
    print(result, file=sys.stderr)
    return cli.EXIT_OK if result.ok else cli.EXIT_ERRORS


cli._EXTENSIONS.append(register)
