"""The deep-learning knobs shared by every recipe: weight init, activations, losses, pretrained weights."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from dlkit.errors import UserError

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def init_weights(model: nn.Module, scheme: str, activation_name: str = "relu") -> None:
    """Re-initialise conv and linear weights (biases to zero); `default` keeps the library's init."""
    if scheme == "default":
        return
    nonlinearity = "leaky_relu" if activation_name == "leaky_relu" else "relu"
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity=nonlinearity)
            elif scheme == "xavier":
                nn.init.xavier_uniform_(module.weight)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class FocalLoss(nn.Module):
    """Cross-entropy that down-weights easy examples (Lin et al., 2017); useful for rare classes."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, weight=self.weight, reduction="none")
        pt = torch.exp(-F.cross_entropy(logits, target, reduction="none"))
        return ((1 - pt) ** self.gamma * ce).mean()


class KLDivLoss(nn.Module):
    """KL divergence between predicted logits and a target distribution (or hard labels)."""

    def __init__(self, num_classes: int | None = None):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dtype in (torch.long, torch.int):
            target = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
        return F.kl_div(F.log_softmax(logits, -1), target, reduction="batchmean")


def make_loss(
    loss_cfg: dict, allowed: tuple[str, ...], class_weight: torch.Tensor | None = None
) -> nn.Module:
    """Build the configured loss, refusing ones that do not fit the recipe's task."""
    name = loss_cfg["name"]
    if name not in allowed:
        raise UserError(f"loss.name={name} does not fit this recipe", f"choose one of: {', '.join(allowed)}")
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(weight=class_weight, label_smoothing=loss_cfg["label_smoothing"])
    if name == "focal":
        return FocalLoss(weight=class_weight)
    if name == "kl_div":
        return KLDivLoss()
    return nn.MSELoss() if name == "mse" else nn.L1Loss()


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """A local weights file as a name -> tensor dict, without unpickling code; UserError naming the file
    when it is missing, truncated, not a state dict, or holds no tensors. Train and `dlkit check` call
    this before a run directory is made."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"model.pretrained file '{file}' does not exist", "give a local .safetensors or .pth file"
        )
    hint = "give a .safetensors file or a .pth holding a plain state dict (name -> tensor)"
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, foreign, or a pickle of code (refused by weights_only)
        raise UserError(f"model.pretrained file '{file}' cannot be read ({str(exc)[:200]})", hint) from None
    if isinstance(state, dict):
        state = state.get("state_dict", state.get("model", state))
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise UserError(f"model.pretrained file '{file}' is not a state dict of tensors", hint)
    return state


def load_pretrained(model: nn.Module, path: str) -> list[str]:
    """Load local weights into `model`; returns the keys that did not fit (e.g. a new head)."""
    file = Path(path).expanduser()
    state = read_weights(path)
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise UserError(
            f"no tensor in '{file}' fits model (names or shapes differ)",
            "check that model.name matches the architecture the weights came from",
        )
    model.load_state_dict(fitting, strict=False)
    return sorted(set(own) - set(fitting))


def timm_classifier(name: str, num_classes: int, in_chans: int = 3, drop_rate: float = 0.0) -> nn.Module:
    """A randomly initialised timm image classifier (weights only ever come from `load_pretrained`).

    An unknown `name` is a UserError that lists the closest timm model names.
    """
    import difflib

    import timm

    if not timm.is_model(name):
        known = timm.list_models()
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        close += [m for m in known if name[:6].lower() in m and m not in close][: 5 - len(close)]
        raise UserError(
            f"model.name '{name}' is not a timm model",
            f"similar names: {', '.join(close)}" if close else "see timm.list_models() for the names",
        )
    return timm.create_model(
        name, pretrained=False, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate
    )
