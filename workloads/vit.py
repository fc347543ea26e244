"""A small vision transformer for CIFAR-10, written with functional attention, and a tiny variant.

Patch embedding (a ``p×p`` convolution with stride ``p``), a learned class token and position
embedding, ``depth`` pre-norm encoder blocks, a final layer norm and a linear head on the class
token. Each block: ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))``, where attention is multi-head
self-attention written with functional operations (``q @ k.transpose``, ``softmax``, the
weighted sum ``attn @ v``) and the MLP is linear-GELU-linear. At ``module`` granularity only
the module outputs are writes; at ``op`` granularity the attention scores, their softmax, the
weighted sum, the concatenation with the class token and both residual sums are writes too.
"""

from __future__ import annotations

import functools
import math
from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn

from workloads.base import WORKLOADS
from workloads.cifar import CifarOptions, CifarWorkload
from workloads.train import TrainConfig


class Attention(nn.Module):
    """Multi-head self-attention: one ``qkv`` linear, functional attention, one ``proj`` linear."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads}).")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        qkv = self.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h))
        weights = F.softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer encoder block."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    """Vision transformer for ``image``×``image`` inputs cut into ``patch``×``patch`` patches."""

    def __init__(
        self,
        *,
        image: int = 32,
        patch: int = 4,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_dim: int = 128,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if image % patch:
            raise ValueError(f"image ({image}) must be a multiple of patch ({patch}).")
        tokens = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_dim) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


#: Registered variants: name → ViT keyword arguments.
VARIANTS: dict[str, dict[str, int]] = {
    "vit_small": {"patch": 4, "dim": 64, "depth": 4, "heads": 4, "mlp_dim": 128},
    "vit_tiny": {"patch": 8, "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32},
}


#: The small ViT's recipe: AdamW (decoupled weight decay 0.05, the usual transformer choice),
#: one-cycle schedule peaking at 1e-3, random crop + flip, bf16 autocast; 30 epochs take about
#: 15 minutes on 2 idle CPU cores. Small ViTs trained from scratch on CIFAR-10 without heavy
#: augmentation stay well below ResNets; see the shipped checkpoint's ``test_acc``.
RECIPE = TrainConfig(
    epochs=30, batch_size=128, lr=1e-3, weight_decay=0.05, optimizer="adamw", schedule="onecycle"
)


def vit(name: str, num_classes: int = 10) -> ViT:
    """An untrained ViT variant (``"vit_small"`` or ``"vit_tiny"``)."""
    if name not in VARIANTS:
        raise ValueError(
            f"The 'name' parameter must be one of {', '.join(VARIANTS)}. Got {name!r}."
        )
    return ViT(**VARIANTS[name], num_classes=num_classes)


def _workload(name: str, **options: Unpack[CifarOptions]) -> CifarWorkload:
    return CifarWorkload(
        name, name, functools.partial(vit, name), dict(VARIANTS[name]), recipe=RECIPE, **options
    )


for _name in VARIANTS:
    WORKLOADS.register(_name, functools.partial(_workload, _name))
