"""torchvision's Mask R-CNN on a ResNet-18/50 + FPN whose body is an sslseg encoder.

The body is the exported torchvision ResNet (``random``, ``imagenet`` or an ``encoder.pt``),
so the same weights that go into the U-Net go here. Batch norm (``batch_norm="auto"``): frozen
(running statistics and affine kept, Detectron2's ``FrozenBN``) for ``imagenet``, as
Detectron2 fine-tunes supervised ImageNet bodies; trained for exported self-supervised encoders,
as MoCo's detection transfer does (He et al. 2020, §4.2: features of unsupervised pretraining
can have other distributions than supervised ones, so batch norm is trained, not frozen), and
for a random body, whose identity statistics would leave it unnormalised. Images are fed at
their store side (``min_size = max_size = side``), with anchors scaled to it: Detectron2's
32-512 px at 800 px become ``side / 25`` .. ``side / 1.6``. Under bf16 autocast the heads hand
fp32 outputs on (:func:`fp32_head_outputs`), so box decoding, NMS and the losses stay fp32.
RoIAlign runs as a sparse product on the CPU (:mod:`sslseg.det.roi_align`), torchvision's
values several times faster.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from sslseg.backbones import build_resnet, check_arch, encoder_weights
from sslseg.det.roi_align import MultiScaleRoIAlign
from sslseg.errors import SslsegError

BATCH_NORM = ("auto", "frozen", "train")
RETURN_LAYERS = {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}
LEVELS = list(RETURN_LAYERS.values())
WIDTHS = {"resnet18": (64, 128, 256, 512), "resnet50": (256, 512, 1024, 2048)}


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Every ``BatchNorm2d`` replaced by a ``FrozenBatchNorm2d`` with its statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batch_norm(child)
    return module


def _as_fp32(_module: nn.Module, _inputs: object, output: object) -> object:
    """A forward hook: ``output``'s tensors (also in tuples / lists) as fp32."""
    if isinstance(output, torch.Tensor):
        return output.float()
    if isinstance(output, (tuple, list)):
        return type(output)(_as_fp32(_module, _inputs, o) for o in output)
    return output


def fp32_head_outputs(model: MaskRCNN) -> MaskRCNN:
    """The RPN head, box predictor and mask predictor give fp32 under bf16 autocast: bf16's
    8-bit mantissa would put decoded box corners on a 0.5 px grid at 128 px (and blur NMS
    and the losses); the convolutions and linears before them keep bf16's speed."""
    heads = (model.rpn.head, model.roi_heads.box_predictor, model.roi_heads.mask_predictor)
    for head in heads:
        head.register_forward_hook(_as_fp32)
    return model


def anchor_sizes(side: int) -> tuple[tuple[int], ...]:
    """One anchor size per FPN level, Detectron2's 32..512 at 800 px scaled to ``side``."""
    return tuple((max(4, round(s * side / 800)),) for s in (32, 64, 128, 256, 512))


def build_mask_rcnn(
    arch: str = "resnet18",
    encoder: str | Path | None = "random",
    side: int = 256,
    detections_per_image: int = 100,
    rois_per_image: int = 512,
    batch_norm: str = "auto",
) -> MaskRCNN:
    """Mask R-CNN (2 classes: background, foreground) on the encoder ``encoder``;
    ``batch_norm``: ``frozen``, ``train`` or ``auto`` (frozen for ``imagenet`` only)."""
    # the FPN taps torchvision's layer1..layer4 (RETURN_LAYERS): no timm backbone here
    check_arch(arch, resnet_only="Mask R-CNN")
    body = build_resnet(arch, "imagenet")
    state = encoder_weights(arch, encoder)
    if state is not None:
        missing, unexpected = body.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise SslsegError(
                f"{encoder}: weights do not fit {arch} (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )
    if batch_norm == "frozen" or (batch_norm == "auto" and encoder == "imagenet"):
        freeze_batch_norm(body)
    backbone = BackboneWithFPN(
        body, RETURN_LAYERS, list(WIDTHS[arch]), 256, extra_blocks=LastLevelMaxPool()
    )
    anchors = AnchorGenerator(anchor_sizes(side), ((0.5, 1.0, 2.0),) * 5)
    model = MaskRCNN(
        backbone,
        num_classes=2,
        min_size=side,
        max_size=side,
        rpn_anchor_generator=anchors,
        box_detections_per_img=detections_per_image,
        box_batch_size_per_image=rois_per_image,
        # torchvision's poolers (7 and 14 px bins, 2 x 2 samples), sparse on the CPU
        box_roi_pool=MultiScaleRoIAlign(LEVELS, 7, 2),
        mask_roi_pool=MultiScaleRoIAlign(LEVELS, 14, 2),
    )
    return fp32_head_outputs(model)


def body_state_dict(model: MaskRCNN) -> dict[str, torch.Tensor]:
    """The ResNet body's weights (torchvision names), e.g. to compare with the encoder file."""
    return dict(model.backbone.body.state_dict())
