"""COCO-format instances and pycocotools' AP (box and mask), the metric of Detectron2.

Ground truth and predictions are converted to COCO dicts (run-length encoded masks) and
scored with ``pycocotools.cocoeval.COCOeval``: AP averaged over IoU 0.50:0.95, AP50, AP75,
for ``bbox`` and ``segm``, one category (the foreground).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from sslseg.errors import SslsegError

CATEGORY = {"id": 1, "name": "foreground"}
#: detections per image that count (COCO's 100 is too few for nuclei: some images hold 300+;
#: the model keeps ``detections_per_image`` of them)
MAX_DETECTIONS = 300


def _ap_from(precision: np.ndarray) -> np.ndarray:
    """(AP, AP50, AP75) from COCOeval's ``T x R x K x A x M`` precision, all areas, the last
    ``maxDets`` (``summarize`` would read AP at a fixed 100 detections)."""
    p = precision[:, :, 0, 0, -1]  # IoU thresholds 0.50:0.05:0.95 x 101 recall points
    ap = float(p[p > -1].mean()) if np.any(p > -1) else -1.0

    def at(t: int) -> float:
        row = p[t]
        return float(row[row > -1].mean()) if np.any(row > -1) else -1.0

    return np.array([ap, at(0), at(5)])


def encode(mask: np.ndarray) -> dict[str, Any]:
    """A binary ``H x W`` mask as COCO's compressed RLE (counts as text, JSON-safe)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def decode(rle: dict[str, Any]) -> np.ndarray:
    """The inverse of :func:`encode` (bool ``H x W``)."""
    counts = rle["counts"]
    rle = {**rle, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(rle).astype(bool)


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def ground_truth(
    names: list[str], masks: list[np.ndarray], boxes: list[np.ndarray], side: int
) -> dict[str, Any]:
    """A COCO dataset dict: image ``j`` is ``names[j]`` with instances ``masks[j]`` (K x H x W)."""
    images, annotations = [], []
    for j, (name, ms, bs) in enumerate(zip(names, masks, boxes)):
        images.append({"id": j + 1, "file_name": name, "width": side, "height": side})
        for m, b in zip(ms, bs):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": j + 1,
                    "category_id": 1,
                    "segmentation": encode(m),
                    "area": float(m.sum()),
                    "bbox": _xywh(b),
                    "iscrowd": 0,
                }
            )
    return {"info": {}, "images": images, "annotations": annotations, "categories": [CATEGORY]}


def detections(
    image_index: int, boxes: np.ndarray, scores: np.ndarray, masks: np.ndarray
) -> list[dict[str, Any]]:
    """COCO result entries of one image (1-based ``image_index`` as in :func:`ground_truth`)."""
    return [
        {
            "image_id": image_index,
            "category_id": 1,
            "bbox": _xywh(b),
            "score": float(s),
            "segmentation": encode(m),
        }
        for b, s, m in zip(boxes, scores, masks)
    ]


def _coco(dataset: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def average_precision(gt: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    """``box_ap, box_ap50, box_ap75, mask_ap, mask_ap50, mask_ap75`` (0-1; -1 without GT)."""
    out: dict[str, float] = {}
    gt_coco = _coco(gt)
    for kind, prefix in (("bbox", "box"), ("segm", "mask")):
        if not gt["annotations"]:
            out.update({f"{prefix}_ap": -1.0, f"{prefix}_ap50": -1.0, f"{prefix}_ap75": -1.0})
            continue
        if results:
            with contextlib.redirect_stdout(io.StringIO()):
                dt = gt_coco.loadRes([{**r} for r in results])
                ev = COCOeval(gt_coco, dt, kind)
                ev.params.maxDets = [1, 10, MAX_DETECTIONS]
                ev.evaluate()
                ev.accumulate()
            stats = _ap_from(ev.eval["precision"])
        else:
            stats = np.zeros(3)
        out.update(
            {
                f"{prefix}_ap": float(stats[0]),
                f"{prefix}_ap50": float(stats[1]),
                f"{prefix}_ap75": float(stats[2]),
            }
        )
    return out


def write_json(path: Path, obj: Any) -> None:
    """Plain JSON (COCO files are read by other tools)."""
    path.write_text(json.dumps(obj))


def read_instances(path: Path) -> dict[str, list[np.ndarray]]:
    """A COCO instances file as ``{file_name: [bool H x W masks]}`` (polygons or RLE)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise SslsegError(f"{path}: not a readable COCO instances file ({exc})") from None
    out: dict[str, list[np.ndarray]] = {}
    for image_id, info in coco.imgs.items():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=None))
        out[info["file_name"]] = [coco.annToMask(a).astype(bool) for a in anns]
    return out
