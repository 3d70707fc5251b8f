"""The gradient-health monitor flags a net built to explode and one built to vanish, and not a healthy one."""

from __future__ import annotations

import torch
from torch import nn

from dlkit.engine.grad_monitor import GradientMonitor


def _deep(depth: int, act: type[nn.Module], gain: float) -> nn.Sequential:
    layers = []
    for _ in range(depth):
        lin = nn.Linear(32, 32)
        nn.init.normal_(lin.weight, std=gain / 32**0.5)
        nn.init.zeros_(lin.bias)
        layers += [lin, act()]
    layers.append(nn.Linear(32, 2))
    return nn.Sequential(*layers)


def _monitor_after_backward(model: nn.Module) -> tuple[dict, list[str]]:
    torch.manual_seed(0)
    monitor = GradientMonitor(model, vanish=1e-5, explode=1e3)
    for _ in range(3):
        model.zero_grad()
        x = torch.randn(64, 32)
        y = torch.randint(0, 2, (64,))
        nn.functional.cross_entropy(model(x), y).backward()
        monitor.sample()
    return monitor.summary()


def test_flags_exploding_gradients():
    torch.manual_seed(0)
    figures, warnings = _monitor_after_backward(_deep(12, nn.Identity, gain=4.0))
    assert any("exploding gradients" in w for w in warnings), warnings
    assert figures["max"] > 1e3


def test_flags_vanishing_gradients():
    torch.manual_seed(0)
    figures, warnings = _monitor_after_backward(_deep(20, nn.Sigmoid, gain=0.5))
    assert any("vanishing gradients" in w for w in warnings), warnings
    assert figures["early"] < 1e-5 * figures["late"]
    assert "0" in warnings[0] and "model.init=kaiming" in warnings[0]


def test_healthy_net_is_quiet():
    torch.manual_seed(0)
    figures, warnings = _monitor_after_backward(_deep(3, nn.ReLU, gain=2**0.5))
    assert warnings == []
    assert set(figures) >= {"mean", "max", "early", "late", "nonfinite", "layers"}
    assert list(figures["layers"])[0] == "0"


def test_nan_gradients_are_reported():
    model = nn.Linear(4, 2)
    monitor = GradientMonitor(model, vanish=1e-5, explode=1e3)
    model(torch.full((2, 4), float("nan"))).sum().backward()
    monitor.sample()
    figures, warnings = monitor.summary()
    assert figures["nonfinite"] > 0 and "NaN/Inf" in warnings[0]
