"""DSB 2018 nuclei instance maps -> a COCO JSON with RLE masks -> ``make_source("coco")`` -> maps.

The first N images (sorted by name) of ``../shared/data/dsb2018-nuclei`` (16-bit instance label
maps in ``instances/``) are written as one COCO instances file in a temporary folder, one
compressed-RLE annotation per nucleus in the order of its id (``sslseg.det.coco.encode``), and
read back the way Detectron2 registers a dataset: the JSON (``annotations``) beside the image
folder (``images: images`` under ``root``). Each map read back must equal the original once the
ids are renumbered 1..N in order (they already are 1..N in this copy), and the binary mask must
be its non-zero pixels.

    .venv/bin/python docs/results/coco-dsb-run.py [N] | tee docs/results/coco-dsb-roundtrip.txt
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sslseg.data.sources import make_source
from sslseg.data.sources.base import list_images, read_label_image
from sslseg.det.coco import encode

ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dsb2018-nuclei"


def relabelled(ids: np.ndarray) -> np.ndarray:
    """``ids`` with its non-zero values renumbered 1..N in increasing order."""
    values = np.unique(ids[ids > 0])
    table = np.zeros(int(ids.max()) + 1, np.int32)
    table[values] = np.arange(1, len(values) + 1)
    return table[ids]


def main(n: int) -> None:
    tic = time.perf_counter()
    root = ROOT.resolve()
    paths = list_images(root / "images")[:n]
    originals, images, annotations = {}, [], []
    for j, path in enumerate(paths):
        ids = read_label_image(root / "instances" / path.name).astype(np.int32)
        originals[path.stem] = ids
        h, w = ids.shape
        images.append({"id": j + 1, "file_name": path.name, "width": w, "height": h})
        for value in np.unique(ids[ids > 0]):
            mask = ids == value
            ys, xs = np.nonzero(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": j + 1,
                    "category_id": 1,
                    "iscrowd": 0,
                    "segmentation": encode(mask),
                    "area": int(mask.sum()),
                    "bbox": [
                        int(xs.min()),
                        int(ys.min()),
                        int(np.ptp(xs)) + 1,
                        int(np.ptp(ys)) + 1,
                    ],
                }
            )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "nucleus"}],
    }
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / "instances.json"
        json_path.write_text(json.dumps(coco))
        source = make_source("coco", root, annotations=str(json_path), images="images")
        items = source.items()
        equal = identical = masks_equal = 0
        for item in items:
            original = originals[item.id]
            back = source.read_instances(item)
            equal += int(np.array_equal(back, relabelled(original)))
            identical += int(np.array_equal(back, original))
            masks_equal += int(np.array_equal(source.read_mask(item), (original > 0)))
        json_mb = json_path.stat().st_size / 2**20
    print(f"images={len(items)}")
    print(f"instances={len(annotations)}")
    print(f"originals_instances={sum(len(np.unique(m[m > 0])) for m in originals.values())}")
    print(f"json_mb={json_mb:.2f}")
    print(f"equal={equal}/{len(items)}")
    print(f"identical_ids={identical}/{len(items)}")
    print(f"masks_equal={masks_equal}/{len(items)}")
    print(f"seconds={time.perf_counter() - tic:.1f}")
    if not equal == masks_equal == len(items) == len(paths):
        sys.exit(1)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
