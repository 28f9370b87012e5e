"""GPU readiness on CUDA (skipped without a GPU): training steps under autocast bf16/fp16 with
channels_last, torch.compile(fullgraph=True) with the default (inductor) backend, and the
memory-efficient dense layers' gradients on the device."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

import archdsl  # noqa: E402
from archdsl.backends.runtime import generated_module  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def _spec(name: str) -> Path:
    p = SPECS / f"{name}.arch"
    if not p.exists():
        pytest.skip(f"{p.name} not present")
    return p


@pytest.mark.parametrize("name", ["resnet50", "inception_v3", "densenet121", "googlenet", "vgg16_bn",
                                  "inception_v4", "bn_inception"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_train_step_autocast_channels_last(name: str, dtype) -> None:
    torch.manual_seed(0)
    spec = _spec(name)
    model = archdsl.build(spec).cuda().to(memory_format=torch.channels_last).train()
    size = 299 if "v3" in name or "v4" in name else 224
    x = torch.randn(8, 3, size, size, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (8,), device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    with torch.autocast("cuda", dtype=dtype):
        loss = generated_module(model).loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        assert model(x).shape == (8, 1000)


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "densenet121"])
def test_compile_fullgraph_inductor_cuda(name: str) -> None:
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = archdsl.build(_spec(name)).cuda().eval()
    x = torch.randn(4, 3, 224, 224, device="cuda")
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        ref = model(x)
        out = compiled(x)
    assert float((out - ref).abs().max() / ref.abs().max()) < 1e-2
    model.train()
    out = compiled(x)
    loss = (out.logits if isinstance(out, tuple) else out).float().square().mean()
    loss.backward()


def test_memory_efficient_gradients_cuda(monkeypatch) -> None:
    # TF32 and nondeterministic cuDNN kernels would blur the comparison
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    torch.manual_seed(0)
    spec = _spec("densenet121")
    plain = archdsl.build(spec).cuda().train()
    lean = archdsl.build(spec, memory_efficient=True).cuda().train()
    lean.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 64, 64, device="cuda")
    for m in (plain, lean):
        m(x).square().mean().backward()
    for (k, a), (_, b) in zip(plain.named_parameters(), lean.named_parameters()):  # noqa: B905
        assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-5), k
