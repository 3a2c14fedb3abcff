"""What ``sslseg detect``'s ``precision`` and ``channels_last`` buy: Mask R-CNN training and
prediction speed on the DSB 2018 nuclei at fp32, bf16 and bf16 + channels_last.

One model (ResNet-18 + FPN, random init, seeded) is trained a few warm-up steps in fp32, so it
has left the initial loss spike but still fills every one of ``--detections`` slots (the cost a
first validation pays). Each setting then starts from a copy of that state and times
``--steps`` training steps of ``--batch-size`` images and a prediction of ``--predict`` images
(the mask head runs on every kept detection), alternating the settings ``--repeats`` times;
the median of each is reported.

    python benchmarks/detect_precision.py --root ../shared/data/dsb2018-nuclei

Lines: ``setting=… train_img_s=… predict_s_per_image=… detections=…``, then
``bf16_train_speedup=… bf16_cl_predict_speedup=…``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from sslseg.det.model import build_mask_rcnn
from sslseg.det.train import DetectConfig, load_detection_data
from sslseg.devices import autocast

SETTINGS = {  # name: (precision, memory format)
    "fp32": ("fp32", torch.contiguous_format),
    "bf16": ("bf16", torch.contiguous_format),
    "bf16_cl": ("bf16", torch.channels_last),
}


def train_steps(model, optimizer, data, rows, batch_size, precision, device) -> float:
    """Seconds for the training steps over ``rows``."""
    model.train()
    tic = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        pairs = [data.target(int(i), False) for i in rows[start : start + batch_size]]
        images = [x.to(device) for x, _ in pairs]
        targets = [{k: v.to(device) for k, v in t.items()} for _, t in pairs]
        with autocast(device, precision):
            loss = sum(model(images, targets).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - tic


@torch.no_grad()
def predict_seconds(model, data, rows, precision, device) -> tuple[float, int]:
    """Seconds for predicting ``rows`` (4 at a time) and the most detections of an image."""
    model.eval()
    tic, most = time.perf_counter(), 0
    for start in range(0, len(rows), 4):
        images = [data.target(int(i), False)[0].to(device) for i in rows[start : start + 4]]
        with autocast(device, precision):
            preds = model(images)
        most = max([most, *(len(p["scores"]) for p in preds)])
    return time.perf_counter() - tic, most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="../shared/data/dsb2018-nuclei")
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--detections", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--predict", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cpu")
    config = DetectConfig(
        source="seg-folder",
        root=args.root,
        source_options={"masks": "instances", "foreground": "nonzero"},
        instances="map",
        side=args.side,
        min_area=4,
        progress=False,
    )
    data = load_detection_data(config, progress=False)
    torch.manual_seed(0)
    model = build_mask_rcnn("resnet18", "random", args.side, args.detections, 256, "auto")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=5e-4, momentum=0.9)
    rows = np.arange(len(data.store))
    n = args.batch_size
    train_steps(model, optimizer, data, rows[: args.warmup_steps * n], n, "fp32", device)
    start = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    timed = rows[args.warmup_steps * n : (args.warmup_steps + args.steps) * n]
    predicted = rows[-args.predict :]
    train_s = {name: [] for name in SETTINGS}
    predict_s = {name: [] for name in SETTINGS}
    most = {}
    for _ in range(args.repeats):
        for name, (precision, memory_format) in SETTINGS.items():
            model.load_state_dict(start[0])
            optimizer.load_state_dict(start[1])
            model.to(memory_format=memory_format)
            predict_seconds(model, data, predicted[:1], precision, device)  # warm the kernels
            seconds, most[name] = predict_seconds(model, data, predicted, precision, device)
            predict_s[name].append(seconds / len(predicted))
            seconds = train_steps(model, optimizer, data, timed, n, precision, device)
            train_s[name].append(len(timed) / seconds)
    for name in SETTINGS:
        print(
            f"setting={name} train_img_s={statistics.median(train_s[name]):.3f} "
            f"predict_s_per_image={statistics.median(predict_s[name]):.3f} "
            f"detections={most[name]}",
            flush=True,
        )
    med = {k: statistics.median(v) for k, v in predict_s.items()}
    tr = {k: statistics.median(v) for k, v in train_s.items()}
    print(
        f"bf16_train_speedup={tr['bf16'] / tr['fp32']:.3f} "
        f"bf16_cl_train_speedup={tr['bf16_cl'] / tr['fp32']:.3f} "
        f"bf16_predict_speedup={med['fp32'] / med['bf16']:.3f} "
        f"bf16_cl_predict_speedup={med['fp32'] / med['bf16_cl']:.3f}"
    )


if __name__ == "__main__":
    main()
