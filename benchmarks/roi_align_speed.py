"""What sslseg's sparse RoIAlign (``sslseg.det.roi_align``) buys over torchvision's CPU op.

1. The poolers alone: torchvision's ``MultiScaleRoIAlign`` and sslseg's, forward and backward
   on FPN maps of ``--batch-size`` images at ``--side`` px (R18-FPN shapes, 256 channels) for
   ``--rois`` random boxes per image, box (7 px) and mask (14 px) bins.
2. Mask R-CNN training and prediction (ResNet-18 + FPN, random init, seeded), one model whose
   two poolers are swapped, both at bf16 autocast + channels_last (``sslseg detect``'s
   defaults on this CPU): a few fp32 warm-up steps, then each pooler from a copy of that state
   times ``--steps`` steps and a prediction of ``--predict`` images, alternated ``--repeats``
   times; medians. Data: PV01 (``--dataset pv01``, the Fig. 9/10 tiles, ``rois_per_image``
   128 as their configs) or the DSB nuclei (``dsb``, 256, many instances per image).

    python benchmarks/roi_align_speed.py --dataset pv01

Lines: ``part=pool_box pooler=… forward_ms=… backward_ms=…`` (and ``pool_mask``), then
``part=train pooler=… train_img_s=… predict_s_per_image=…``, then the speed-ups.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections import OrderedDict

import numpy as np
import torch
from torchvision.ops import MultiScaleRoIAlign as TorchvisionPooler

from detect_precision import predict_seconds, train_steps
from sslseg.det.model import LEVELS, build_mask_rcnn
from sslseg.det.roi_align import MultiScaleRoIAlign as SparsePooler
from sslseg.det.train import DetectConfig, load_detection_data

DATASETS = {
    "pv01": dict(
        root="../shared/data/multires-pv/roboflow",
        source_options={"foreground": "nonzero", "include": "PV01_*"},
        instances="components",
        min_area=16,
        rois_per_image=128,
    ),
    "dsb": dict(
        root="../shared/data/dsb2018-nuclei",
        source_options={"masks": "instances", "foreground": "nonzero"},
        instances="map",
        min_area=4,
        rois_per_image=256,
    ),
}


def poolers(bins: int) -> dict[str, torch.nn.Module]:
    return {
        "torchvision": TorchvisionPooler(LEVELS, bins, 2),
        "sslseg": SparsePooler(LEVELS, bins, 2),
    }


def time_pool(pooler, maps, boxes, side, repeats) -> tuple[float, float]:
    """Median forward and backward milliseconds of ``pooler``."""
    forward, backward = [], []
    for _ in range(repeats):
        leaves = OrderedDict((k, v.detach().requires_grad_()) for k, v in maps.items())
        tic = time.perf_counter()
        out = pooler(leaves, boxes, [(side, side)] * len(boxes))
        mid = time.perf_counter()
        out.backward(torch.ones_like(out))
        forward.append(mid - tic)
        backward.append(time.perf_counter() - mid)
    return 1e3 * statistics.median(forward), 1e3 * statistics.median(backward)


def pool_part(args: argparse.Namespace) -> None:
    gen = torch.Generator().manual_seed(0)
    maps = OrderedDict(
        (
            name,
            torch.randn(
                args.batch_size, 256, args.side >> (2 + i), args.side >> (2 + i), generator=gen
            ),
        )
        for i, name in enumerate(LEVELS)
    )
    maps = OrderedDict((k, v.to(memory_format=torch.channels_last)) for k, v in maps.items())
    boxes = []
    for _ in range(args.batch_size):
        corner = torch.rand(args.rois, 2, generator=gen) * args.side * 0.9
        size = torch.rand(args.rois, 2, generator=gen) * args.side * 0.5 + 2
        boxes.append(torch.cat([corner, (corner + size).clamp(max=args.side)], 1))
    for part, bins in (("pool_box", 7), ("pool_mask", 14)):
        for name, pooler in poolers(bins).items():
            fwd, bwd = time_pool(pooler, maps, boxes, args.side, args.repeats + 2)
            print(
                f"part={part} pooler={name} forward_ms={fwd:.1f} backward_ms={bwd:.1f}", flush=True
            )


def use_poolers(model, name: str) -> None:
    model.roi_heads.box_roi_pool = poolers(7)[name]
    model.roi_heads.mask_roi_pool = poolers(14)[name]


def train_part(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    settings = DATASETS[args.dataset]
    config = DetectConfig(
        source="seg-folder",
        root=settings["root"],
        source_options=settings["source_options"],
        instances=settings["instances"],
        side=args.side,
        min_area=settings["min_area"],
        progress=False,
    )
    data = load_detection_data(config, progress=False)
    device = torch.device("cpu")
    torch.manual_seed(0)
    model = build_mask_rcnn("resnet18", "random", args.side, 100, settings["rois_per_image"])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=5e-3, momentum=0.9)
    rows = np.random.default_rng(0).permutation(len(data.store))
    n = args.batch_size
    use_poolers(model, "torchvision")
    train_steps(model, optimizer, data, rows[: args.warmup_steps * n], n, "fp32", device)
    start = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    timed = rows[args.warmup_steps * n : (args.warmup_steps + args.steps) * n]
    predicted = rows[-args.predict :]
    model.to(memory_format=torch.channels_last)
    train_s: dict[str, list[float]] = {"torchvision": [], "sslseg": []}
    predict_s: dict[str, list[float]] = {"torchvision": [], "sslseg": []}
    for _ in range(args.repeats):
        for name in train_s:
            use_poolers(model, name)
            model.load_state_dict(start[0])
            optimizer.load_state_dict(start[1])
            predict_seconds(model, data, predicted[:1], "bf16", device)  # warm the kernels
            seconds, _ = predict_seconds(model, data, predicted, "bf16", device)
            predict_s[name].append(seconds / len(predicted))
            seconds = train_steps(model, optimizer, data, timed, n, "bf16", device)
            train_s[name].append(len(timed) / seconds)
    result = {}
    for name in train_s:
        result[name] = (statistics.median(train_s[name]), statistics.median(predict_s[name]))
        print(
            f"part=train dataset={args.dataset} pooler={name} train_img_s={result[name][0]:.3f} "
            f"predict_s_per_image={result[name][1]:.3f}",
            flush=True,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="pv01")
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rois", type=int, default=128, help="pooler part: boxes per image")
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--predict", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pool_part(args)
    result = train_part(args)
    tv, ours = result["torchvision"], result["sslseg"]
    print(
        f"dataset={args.dataset} train_speedup={ours[0] / tv[0]:.3f} "
        f"predict_speedup={tv[1] / ours[1]:.3f} threads={torch.get_num_threads()}"
    )


if __name__ == "__main__":
    main()
