"""specs/cifar_resnet20.arch against the classic PyTorch CIFAR ResNet (no package ships one).

The reference below is the widely used port of He et al.'s CIFAR ResNets (Yerlan Idelbayev's
``resnet_cifar.py``): BasicBlocks with option-A shortcuts, a ``LambdaLayer`` that subsamples
``x[:, :, ::2, ::2]`` and zero-pads ``planes // 4`` channels on each side (no parameters), or
option-B 1x1 conv + BN projections.  The compiled spec must have its parameter count and MACs,
load its state_dict strictly with its own keys, and give the same outputs in eval mode (with
randomized BN statistics) and in train mode.  ResNet-20 with option A has 269,722 parameters;
the often quoted 272,474 is option B's (2,752 more, the two projections).
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archdsl.backends.reference import randomize_norm_layers  # noqa: E402
from archdsl.backends.runtime import load_spec  # noqa: E402
from archdsl.pipeline import analyze  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "specs" / "cifar_resnet20.arch"


# ---------------------------------------------------------------- the classic implementation


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, option="A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == "A":
                self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2],
                                                            (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))
            elif option == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(self.expansion * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, option="A"):
        super().__init__()
        self.in_planes = 16
        self.option = option
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s, self.option))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


def resnet20(option="A"):
    return ResNet(BasicBlock, [3, 3, 3], option=option)


# ---------------------------------------------------------------------------------- the checks

OPTIONS = {"A": 269_722, "B": 272_474}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_params_and_macs_equal_the_port(option: str) -> None:
    ref = resnet20(option)
    assert sum(p.numel() for p in ref.parameters()) == OPTIONS[option]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        ref.eval()(torch.zeros(1, 3, 32, 32))
    res = analyze(SPEC, {"option": option})
    assert res.ok, [str(d) for d in res.diags if d.is_error]
    assert res.graph.total_params() == OPTIONS[option]
    assert 2 * res.graph.eval_macs() == counter.get_total_flops()


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_strict_load_and_outputs_match_the_port(option: str) -> None:
    torch.manual_seed(0)
    ref = resnet20(option)
    randomize_norm_layers(ref, seed=0)
    model = load_spec(SPEC, option=option).build()
    assert list(model.state_dict()) and set(model.state_dict()) == set(ref.state_dict())
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    model.eval()
    ref.eval()
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    assert ours.shape == (4, 10)
    assert float((ours - theirs).abs().max()) <= 1e-5
    # train mode: batch statistics, then the same running statistics afterwards
    model.train()
    ref.train()
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    assert float((ours - theirs).abs().max()) <= 1e-5
    a, b = model.state_dict(), ref.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in b if b[k].is_floating_point()) <= 1e-5


def test_option_a_shortcut_is_subsample_and_zero_pad() -> None:
    """The stride-2 block of layer2 adds x[:, :, ::2, ::2] padded with 8 zero channels per side."""
    model = load_spec(SPEC).build().eval()
    block = model.get_submodule("layer2.0")
    for conv in (block.conv1, block.conv2):
        nn.init.zeros_(conv.weight)   # body output = the BN's bias, zero by default
    x = torch.rand(2, 16, 32, 32)
    with torch.no_grad():
        y = block(x)
    expected = F.relu(F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8)))
    assert y.shape == (2, 32, 16, 16)
    assert torch.allclose(y, expected)
