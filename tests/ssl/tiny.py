"""The one-conv backbone (8 features) that every SSL test builds its method on."""

from torch import nn


def tiny_backbone() -> nn.Module:
    """Conv 3→8, batch norm, ReLU, global pool: small enough for a test step in milliseconds,
    with batch norm so that what a method does with batch statistics is exercised."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
