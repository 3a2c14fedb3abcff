"""RoIAlign on the CPU as one sparse matrix product, for Mask R-CNN's box and mask poolers.

torchvision's CPU ``roi_align`` recomputes the bilinear weights of every sample for every
channel and adds its gradient one scalar at a time on one thread (benchmarks/roi_align_speed.py:
its backward for 512 boxes takes 28 times as long as the sparse product's). Every output
bin is a fixed weighted sum of at most ``4 * sampling_ratio**2`` feature-map positions, the
same for all channels, so the pooling is ``S @ table`` with ``S`` a sparse (bins x positions)
matrix and ``table`` the feature maps as (positions x channels) rows, and its gradient is
``S.T @ grad``: both threaded, vectorised over the channels, for all FPN levels at once.
Values are torchvision's (``aligned=False``, a fixed ``sampling_ratio``) up to float
summation order; CUDA tensors, an adaptive sampling ratio and tracing keep torchvision's op.
"""

from __future__ import annotations

import warnings

import torch
import torchvision
from torch import Tensor
from torchvision.ops import poolers


def _axis_samples(
    start: Tensor, length: Tensor, bins: int, grid: int, size: Tensor
) -> tuple[Tensor, Tensor]:
    """Bilinear neighbours and weights along one axis, (rois, bins, grid, 2) each, for rois
    from ``start`` over ``length`` on a map ``size`` long (all per roi), exactly as
    torchvision's ``bilinear_interpolate``: a sample beyond [-1, size] weighs 0, one in
    [-1, 0] or [size - 1, size] takes the border value."""
    step = (length / bins)[:, None, None]
    b = torch.arange(bins, dtype=start.dtype)[:, None]
    i = torch.arange(grid, dtype=start.dtype)[None, :]
    y = start[:, None, None] + b * step + (i + 0.5) * step / grid
    last = (size - 1)[:, None, None]
    inside = (y >= -1.0) & (y <= last + 1)
    y = y.clamp(min=0.0)
    low = torch.minimum(y.floor().long(), last)
    at_edge = low >= last
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(y), y - low)
    index = torch.stack([low, high], dim=-1)
    weight = torch.stack([1.0 - frac, frac], dim=-1) * inside[..., None]
    return index, weight


def _csr(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """A CSR matrix, without torch's once-per-process note that sparse CSR is beta (the
    construction and the product with a dense matrix used here are long stable)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class _SparseProduct(torch.autograd.Function):
    """``S @ table`` for S with a fixed number of entries per row (``index``, ``weight``:
    rows x entries); the gradient reaches ``table`` only (boxes carry none, as in
    torchvision)."""

    @staticmethod
    def forward(ctx, table: Tensor, index: Tensor, weight: Tensor) -> Tensor:
        rows, entries = index.shape
        ctx.save_for_backward(index, weight)
        ctx.positions = table.shape[0]
        crow = torch.arange(0, rows * entries + 1, entries)
        matrix = _csr(crow, index.reshape(-1), weight.reshape(-1), (rows, table.shape[0]))
        return matrix @ table

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        index, weight = ctx.saved_tensors
        rows, entries = index.shape
        flat = index.reshape(-1)
        order = torch.argsort(flat, stable=True)
        crow = torch.zeros(ctx.positions + 1, dtype=torch.long)
        crow[1:] = torch.bincount(flat, minlength=ctx.positions).cumsum(0)
        # the transpose's rows are the map positions: sort the entries by position (stable, so
        # each position sums its bins in torchvision's order)
        transposed = _csr(crow, order // entries, weight.reshape(-1)[order], (ctx.positions, rows))
        with torch.autocast("cpu", enabled=False):
            return transposed @ grad.float().contiguous(), None, None


def roi_align_levels(
    features: list[Tensor],
    rois: Tensor,
    levels: Tensor,
    scales: list[float],
    output_size: tuple[int, int],
    sampling_ratio: int,
) -> Tensor:
    """Each roi (``rois``: K x 5, batch index then x1 y1 x2 y2 in image pixels) pooled from
    its level's feature map (``levels``: K level numbers into ``features``, each B x C x H x W
    at ``scales[level]`` of the image), as torchvision's ``roi_align(aligned=False)``;
    computed in fp32, returned in ``features[0]``'s dtype (as torchvision's autocast does)."""
    out_h, out_w = output_size
    grid = sampling_ratio
    channels = features[0].shape[1]
    if len(rois) == 0:
        return features[0].new_zeros((0, channels, out_h, out_w))
    with torch.autocast("cpu", enabled=False):
        tables, offsets, sizes, start = [], [], [], 0
        for feature in features:
            batch, _, height, width = feature.shape
            tables.append(feature.float().permute(0, 2, 3, 1).reshape(-1, channels))
            offsets.append(start)
            sizes.append((height, width))
            start += batch * height * width
        level = levels.long()
        box = rois.float()
        scale = torch.tensor(scales, dtype=torch.float32)[level]
        heights = torch.tensor([h for h, _ in sizes])[level]
        widths = torch.tensor([w for _, w in sizes])[level]
        x1, y1, x2, y2 = (box[:, j] * scale for j in range(1, 5))
        # separable: each output bin's samples are (rows along y) x (columns along x)
        y_index, y_weight = _axis_samples(y1, (y2 - y1).clamp(min=1.0), out_h, grid, heights)
        x_index, x_weight = _axis_samples(x1, (x2 - x1).clamp(min=1.0), out_w, grid, widths)
        k = len(box)
        base = torch.tensor(offsets)[level] + box[:, 0].long() * heights * widths
        index = (
            base.view(k, 1, 1, 1, 1, 1, 1)
            + y_index.view(k, out_h, 1, grid, 2, 1, 1) * widths.view(k, 1, 1, 1, 1, 1, 1)
            + x_index.view(k, 1, out_w, 1, 1, grid, 2)
        )
        weight = y_weight.view(k, out_h, 1, grid, 2, 1, 1) * x_weight.view(
            k, 1, out_w, 1, 1, grid, 2
        )
        bins, entries = k * out_h * out_w, 4 * grid * grid
        pooled = _SparseProduct.apply(
            torch.cat(tables),
            index.reshape(bins, entries),
            (weight / (grid * grid)).reshape(bins, entries),
        )
    return pooled.view(k, out_h, out_w, channels).permute(0, 3, 1, 2).to(features[0].dtype)


class MultiScaleRoIAlign(poolers.MultiScaleRoIAlign):
    """torchvision's FPN pooler (same levels, scales and outputs) pooling CPU feature maps
    with :func:`roi_align_levels`: all levels in one sparse product."""

    def forward(
        self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        features = poolers._filter_input(x, self.featmap_names)
        cpu = features[0].device.type == "cpu"
        if not cpu or self.sampling_ratio <= 0 or torchvision._is_tracing():
            return super().forward(x, boxes, image_shapes)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = poolers._setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level
            )
        rois = poolers._convert_to_roi_format(boxes)
        if len(features) == 1:
            levels = torch.zeros(len(rois), dtype=torch.long)
        else:
            levels = self.map_levels(boxes)
        return roi_align_levels(
            features, rois, levels, self.scales, self.output_size, self.sampling_ratio
        )
