"""archdsl.build and the compiled modules at run time: API, tracebacks, loss, init, BN folding,
memory-efficient dense layers, and the CPU-checkable parts of GPU readiness (channels_last,
autocast, torch.export, torch.compile fullgraph, ONNX)."""

from __future__ import annotations

import copy
import inspect
import linecache
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import archdsl  # noqa: E402
from archdsl.backends.runtime import BuildError, generated_module, load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "golden" / "codegen" / "mini.arch"
SPECS = ROOT / "specs"


def _spec(name: str) -> Path:
    p = SPECS / f"{name}.arch"
    if not p.exists():
        pytest.skip(f"{p.name} not present")
    return p


def _rel(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _randomize_bn(model, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)


# ------------------------------------------------------------------------------------ API


def test_build_from_path_and_loaded_spec() -> None:
    model = archdsl.build(MINI, num_classes=5)
    assert isinstance(model, torch.nn.Module)
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    spec = archdsl.load_spec(str(MINI), num_classes=4)
    assert spec.params["num_classes"] == 4
    assert archdsl.build(spec).fc.out_features == 4
    assert archdsl.compile_source(spec) == spec.source()


def test_runtime_executes_the_same_source_as_compile() -> None:
    model = archdsl.build(MINI)
    mod = generated_module(model)
    assert mod.__archdsl_source__ == archdsl.compile_source(MINI)
    assert inspect.getsource(type(model)).startswith("class mini(nn.Module):")


def test_tracebacks_point_at_generated_lines() -> None:
    model = archdsl.build(MINI).eval()
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(1, 5, 32, 32))  # wrong channel count
    frames = [f for f in traceback.extract_tb(info.value.__traceback__) if f.filename.startswith("<archdsl")]
    assert frames, "no frame from the generated module"
    assert frames[0].line.strip() == "x = self.stem(x)"
    assert linecache.getline(frames[0].filename, frames[0].lineno).strip() == "x = self.stem(x)"


def test_train_mode_returns_named_tuple_eval_mode_main_output() -> None:
    model = archdsl.build(MINI)
    x = torch.randn(2, 3, 32, 32)
    out = model.train()(x)
    assert type(out).__name__ == "miniOutputs" and out._fields == ("logits", "aux1")
    assert out.logits.shape == out.aux1.shape == (2, 10)
    assert isinstance(model.eval()(x), torch.Tensor)
    off = archdsl.build(MINI, aux_logits=False)
    assert isinstance(off.train()(x), torch.Tensor)
    assert not any(k.startswith("aux1.") for k in off.state_dict())


def test_deepcopy_and_pickle() -> None:
    model = archdsl.build(MINI).eval()
    x = torch.randn(1, 3, 32, 32)
    clone = copy.deepcopy(model)
    assert torch.equal(clone(x), model(x))
    again = pickle.loads(pickle.dumps(model))
    assert torch.equal(again(x), model(x))


def test_memory_efficient_requires_dense_layers() -> None:
    with pytest.raises(BuildError) as info:
        archdsl.build(_spec("resnet18"), memory_efficient=True)
    assert info.value.diagnostics[0].code == "E334"


# ------------------------------------------------------------------------------------ loss and init


def test_loss_fn_is_label_smoothed_cross_entropy_plus_weighted_aux() -> None:
    mod = load_spec(MINI).module()
    eps, k = 0.1, 10
    gen = torch.Generator().manual_seed(0)
    logits, aux = torch.randn(4, k, generator=gen), torch.randn(4, k, generator=gen)
    target = torch.tensor([1, 0, 9, 3])

    def by_hand(z: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(z.double(), dim=1)
        h_q = -logp[torch.arange(4), target]  # H(q, p) with q the one-hot label
        h_u = -logp.mean(dim=1)  # H(u, p) with u uniform over the K classes
        return ((1 - eps) * h_q + eps * h_u).mean()

    out = mod.miniOutputs(logits, aux)
    expected = by_hand(logits) + 0.3 * by_hand(aux)
    assert torch.allclose(mod.loss_fn(out, target).double(), expected, atol=1e-6)
    assert torch.allclose(mod.loss_fn(logits, target).double(), by_hand(logits), atol=1e-6)
    assert mod.AUX_WEIGHTS == {"aux1": 0.3} and mod.LABEL_SMOOTHING == 0.1


def test_init_is_deterministic_and_follows_the_spec() -> None:
    torch.manual_seed(123)
    a = archdsl.build(MINI)
    torch.manual_seed(123)
    b = archdsl.build(MINI)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):  # noqa: B905
        assert ka == kb and torch.equal(va, vb), ka
    assert torch.count_nonzero(a.fc.bias) == 0
    assert abs(float(a.fc.weight.detach().std()) - 0.01) < 0.003
    conv = a.block1.layer1.conv1  # kaiming normal, fan_out, relu: std = sqrt(2 / fan_out)
    fan_out = conv.weight.shape[0] * conv.weight[0, 0].numel()
    assert abs(float(conv.weight.detach().std()) / (2 / fan_out) ** 0.5 - 1) < 0.15
    assert all(torch.all(m.weight == 1) for m in a.modules() if isinstance(m, torch.nn.BatchNorm2d))


# ------------------------------------------------------------------------------------ fold BN


@pytest.mark.parametrize("name, size", [("mini", 32), ("resnet50", 64), ("densenet121", 64),
                                        ("bn_inception", 224), ("vgg16_bn", 32)])
def test_fold_bn_matches_unfolded_outputs(name: str, size: int) -> None:
    spec = MINI if name == "mini" else _spec(name)
    torch.manual_seed(0)
    model = archdsl.build(spec)
    _randomize_bn(model)
    model.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ref = model(x)
        folded, report = archdsl.fold_bn(model, report=True)
        out = folded(x)
    assert _rel(out, ref) <= 1e-4
    assert report.folded
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert len(report.folded) + len(report.kept) == n_bn
    # the folded weights load strictly into the --fold-bn architecture and give the same outputs
    arch = archdsl.build(spec, fold_bn=True).eval()
    arch.load_state_dict(folded.state_dict(), strict=True)
    with torch.no_grad():
        assert _rel(arch(x), ref) <= 1e-4
    if name == "densenet121":
        assert all(".norm1" in k or ".transition" in k or k.endswith("norm5") for k in report.kept)
        assert any(k.endswith("denselayer1.norm2") for k, _ in report.folded)


def test_fold_bn_rejects_foreign_models() -> None:
    with pytest.raises(TypeError):
        archdsl.fold_bn(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.BatchNorm2d(1)))


# ------------------------------------------------------------------------------------ memory efficient


def test_memory_efficient_dense_layers_recompute_and_give_identical_gradients(monkeypatch) -> None:
    torch.manual_seed(0)
    plain = archdsl.build(MINI)
    lean = archdsl.build(MINI, memory_efficient=True)
    lean.load_state_dict(plain.state_dict())
    cls = type(plain.block1.layer1)
    assert cls is type(lean.block1.layer1), "same generated class, switched by a constructor flag"
    calls: list[str] = []
    orig = cls.bottleneck

    def bottleneck(self, *inputs):
        calls.append("x")
        return orig(self, *inputs)

    monkeypatch.setattr(cls, "bottleneck", bottleneck)
    x = torch.randn(4, 3, 32, 32)
    target = torch.tensor([0, 1, 2, 3])
    grads = []
    counts = []
    for m in (plain, lean):
        calls.clear()
        m.train()
        torch.manual_seed(7)  # same dropout masks in both runs
        loss = generated_module(m).loss_fn(m(x), target)
        loss.backward()
        counts.append(len(calls))
        grads.append({k: p.grad.clone() for k, p in m.named_parameters()})
    assert counts == [3, 6], "checkpointing must recompute the 3 bottlenecks during backward"
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], rtol=1e-5, atol=1e-7), k
    calls.clear()
    with torch.no_grad():
        lean(x)
    assert len(calls) == 3  # no checkpointing without autograd


# ------------------------------------------------------------------------------------ GPU readiness on CPU


@pytest.mark.parametrize("name, size", [("mini", 32), ("resnet18", 64), ("densenet121", 64), ("googlenet", 64)])
def test_channels_last_and_bf16_autocast(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = archdsl.build(MINI if name == "mini" else _spec(name)).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ref = model(x)
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        out = cl(x.to(memory_format=torch.channels_last))
        assert _rel(out, ref) <= 1e-4
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
        assert low.dtype == torch.bfloat16
        assert _rel(low.float(), ref) <= 0.1


@pytest.mark.parametrize("name, size", [("mini", 32), ("resnet18", 64), ("inception_v3", 299)])
def test_torch_export(name: str, size: int) -> None:
    model = archdsl.build(MINI if name == "mini" else _spec(name)).eval()
    x = torch.randn(1, 3, size, size)
    prog = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(prog.module()(x), model(x), atol=1e-5)


@pytest.mark.parametrize("name, size", [("mini", 32), ("googlenet", 64)])
def test_torch_compile_fullgraph_no_graph_breaks(name: str, size: int) -> None:
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = archdsl.build(MINI if name == "mini" else _spec(name))
    x = torch.randn(2, 3, size, size)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")  # fullgraph: any break raises
    for train in (False, True):
        model.train(train)
        torch.manual_seed(1)
        with torch.no_grad():
            expected = model(x)
        torch.manual_seed(1)
        out = compiled(x)
        if train and isinstance(expected, tuple):
            for a, b in zip(out, expected):  # noqa: B905
                assert torch.allclose(a, b, atol=1e-5)
        else:
            assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.slow
def test_torch_compile_inductor_mini() -> None:
    torch._dynamo.reset()
    model = archdsl.build(MINI).eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-4)


def test_onnx_export_cli(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "mini.onnx"
    r = subprocess.run([sys.executable, "-m", "archdsl", "compile", str(MINI), "--target", "onnx", "-o", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert out.stat().st_size > 10_000
    assert "onnx.checker ok" in r.stderr
    import onnx

    onnx.checker.check_model(onnx.load(str(out)))
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    assert "onnxruntime vs PyTorch max |diff|" in r.stderr
    diff = float(r.stderr.split("max |diff|")[1].split(")")[0])
    assert diff < 1e-4


def test_onnx_export_zoo_spec() -> None:
    pytest.importorskip("onnx")
    from archdsl.backends.onnx_export import export_onnx

    model = archdsl.build(_spec("resnet18"))
    result = export_onnx(model, (3, 224, 224))
    assert result.checked and len(result.data) > 40_000_000
    if result.max_abs_diff is not None:
        assert result.max_abs_diff < 1e-3


def test_spec_cache_sees_edits(tmp_path: Path) -> None:
    p = tmp_path / "net.arch"
    p.write_text("network n\ninput 3x8x8\nflatten\nfc: linear(2)\n")
    assert archdsl.build(p).fc.out_features == 2
    assert archdsl.load_spec(p) is archdsl.load_spec(p)  # unchanged: cached
    p.write_text("network n\ninput 3x8x8\nflatten\nfc: linear(30)\n")
    assert archdsl.build(p).fc.out_features == 30
