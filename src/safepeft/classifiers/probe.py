"""A linear probe: L2-regularised logistic regression on standardised features, fitted by Newton's method in torch.

Deterministic for given inputs (full-batch Newton from zero weights, float64), so a retrain on the same features
gives the same weights up to floating-point summation order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class LinearProbe:
    """``p(complied) = sigmoid(((x - mean) / std) @ weight + bias)``."""

    mean: Any
    """(D,) feature means of the training rows."""
    std: Any
    """(D,) feature standard deviations (floored), so every feature enters on the same scale."""
    weight: Any
    """(D,) coefficients on standardised features."""
    bias: Any
    """() intercept."""

    def logits(self, features: Any) -> Any:
        """(N,) logits for (N, D) features."""
        x = (features.double() - self.mean) / self.std
        return x @ self.weight + self.bias

    def tensors(self) -> dict[str, Any]:
        """What the safetensors file holds (float32)."""
        return {name: getattr(self, name).float().contiguous() for name in ("mean", "std", "weight", "bias")}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Any]) -> LinearProbe:
        return cls(**{name: tensors[name].double() for name in ("mean", "std", "weight", "bias")})


def fit_probe(features: Any, labels: Any, l2: float = 1.0, max_iter: int = 50,
              sample_weight: Any = None) -> LinearProbe:
    """Fit on (N, D) features and (N,) 0/1 labels by Newton's method (exact, deterministic, D is small).

    Minimises ``sum_i w_i * logloss_i + l2/2 * |weight|^2`` (the bias is not penalised) until the Newton step is
    below 1e-8; ``sample_weight`` balances sources of different sizes.
    """
    import torch

    x = features.double()
    mean = x.mean(0)
    std = x.std(0).clamp_min(1e-6)
    x = torch.cat([(x - mean) / std, torch.ones(len(x), 1, dtype=torch.float64)], 1)  # (N, D+1)
    y = labels.double()
    w = torch.ones_like(y) if sample_weight is None else sample_weight.double()
    penalty = torch.full((x.shape[1],), float(l2), dtype=torch.float64)
    penalty[-1] = 0.0
    theta = torch.zeros(x.shape[1], dtype=torch.float64)
    for _ in range(max_iter):
        p = torch.sigmoid(x @ theta)
        gradient = x.T @ (w * (p - y)) + penalty * theta
        hessian = (x.T * (w * p * (1 - p))) @ x + torch.diag(penalty + 1e-9)
        step = torch.linalg.solve(hessian, gradient)
        theta = theta - step
        if step.abs().max() < 1e-8:
            break
    return LinearProbe(mean=mean, std=std, weight=theta[:-1].clone(), bias=theta[-1].clone())
