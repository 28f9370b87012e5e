"""Benchmark: ``archdsl.build(spec)`` vs the reference constructor (torchvision, timm...).

Both are timed side by side in one process, alternating, ``--repeats`` times each; the table
gives medians and the ratios archdsl / reference (target <= 1.1).  "uncached" is a full build:
parsing the spec, shape/cost analysis, code generation, ``exec`` and module construction (the
in-process spec cache is cleared before each); "cached" is a repeated build of an unchanged spec
(stat of its files, then ``exec``'d classes reused and the module constructed).  The very first
build of a process also loads the grammar; it is reported once.  Without torchvision the
reference column is skipped.

Run: ``python bench/bench_build.py [--specs resnet50,inception_v3,densenet121,googlenet | zoo] [--repeats 7]``
(``zoo``: the modern zoo, ResNeXt to Inception-ResNet-v2; timm references need timm installed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCES = {
    "googlenet": ("torchvision", "googlenet", {"aux_logits": True, "init_weights": True}),
    "inception_v3": ("torchvision", "inception_v3", {"aux_logits": True, "init_weights": True}),
    "inception_v4": ("timm", "inception_v4", {}),
    "resnet18": ("torchvision", "resnet18", {}),
    "resnet50": ("torchvision", "resnet50", {}),
    "resnet152": ("torchvision", "resnet152", {}),
    "densenet121": ("torchvision", "densenet121", {}),
    "densenet201": ("torchvision", "densenet201", {}),
    "vgg16": ("torchvision", "vgg16", {}),
    # the modern zoo
    "resnext50_32x4d": ("torchvision", "resnext50_32x4d", {}),
    "wide_resnet50_2": ("torchvision", "wide_resnet50_2", {}),
    "mobilenet_v2": ("torchvision", "mobilenet_v2", {}),
    "mobilenet_v3_large": ("torchvision", "mobilenet_v3_large", {}),
    "efficientnet_b0": ("torchvision", "efficientnet_b0", {}),
    "efficientnet_v2_s": ("torchvision", "efficientnet_v2_s", {}),
    "convnext_tiny": ("torchvision", "convnext_tiny", {}),
    "regnet_y_400mf": ("torchvision", "regnet_y_400mf", {}),
    "shufflenet_v2_x1_0": ("torchvision", "shufflenet_v2_x1_0", {}),
    "squeezenet1_1": ("torchvision", "squeezenet1_1", {}),
    "mnasnet1_0": ("torchvision", "mnasnet1_0", {}),
    "inception_resnet_v2": ("timm", "inception_resnet_v2", {}),
}
#: ``--specs zoo``: the issue's modern zoo (the default set is the seed benchmark's).
MODERN = ("resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0",
          "efficientnet_v2_s", "convnext_tiny", "regnet_y_400mf", "shufflenet_v2_x1_0", "squeezenet1_1",
          "mnasnet1_0", "inception_resnet_v2")


def reference_ctor(name: str):
    """A zero-argument constructor of the reference model, or None when unavailable."""
    pkg, fn, kwargs = REFERENCES.get(name, (None, None, None))
    try:
        if pkg == "torchvision":
            import torchvision.models as tvm

            make_model = lambda: getattr(tvm, fn)(weights=None, **kwargs)  # noqa: E731
        elif pkg == "timm":
            import timm

            make_model = lambda: timm.create_model(fn, pretrained=False, **kwargs)  # noqa: E731
        else:
            return None
    except ImportError:
        return None

    def make():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make_model()

    return make


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default="resnet50,inception_v3,densenet121,googlenet")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = ap.parse_args(argv)

    import torch

    import archdsl

    if args.threads:
        torch.set_num_threads(args.threads)
    specs = list(MODERN) if args.specs == "zoo" else [s.strip() for s in args.specs.split(",") if s.strip()]
    t0 = time.perf_counter()
    archdsl.build(ROOT / "specs" / f"{specs[0]}.arch")
    cold = time.perf_counter() - t0
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"first archdsl.build in this process (grammar load included): {cold * 1e3:.0f} ms")
    from archdsl.backends.runtime import clear_cache

    print(f"{'spec':20s} {'uncached ms':>12s} {'cached ms':>10s} {'reference ms':>13s} "
          f"{'ratio uncached':>15s} {'ratio cached':>13s}")
    for name in specs:
        path = ROOT / "specs" / f"{name}.arch"
        ref = reference_ctor(name)
        cold_t, warm_t, theirs = [], [], []
        archdsl.build(path)
        for _ in range(args.repeats):
            clear_cache()
            t = time.perf_counter()
            archdsl.build(path)
            cold_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            archdsl.build(path)
            warm_t.append(time.perf_counter() - t)
            if ref is not None:
                t = time.perf_counter()
                ref()
                theirs.append(time.perf_counter() - t)
        a, c = statistics.median(cold_t) * 1e3, statistics.median(warm_t) * 1e3
        if theirs:
            b = statistics.median(theirs) * 1e3
            print(f"{name:20s} {a:12.1f} {c:10.1f} {b:13.1f} {a / b:15.2f} {c / b:13.2f}")
        else:
            print(f"{name:20s} {a:12.1f} {c:10.1f} {'(none)':>13s} {'-':>15s} {'-':>13s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
