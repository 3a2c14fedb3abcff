"""Instances from the labels users have: binary masks (connected components) or label maps.

A binary mask of PV panels holds whole arrays as connected blobs: each 8-connected component
of at least ``min_area`` pixels is one instance (seed 003 detects panel arrays). Instance label
maps (DSB 2018 nuclei, or a ``coco`` source's annotations: its ``read_instances``) give each
non-zero id as one instance.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from sslseg.data.sources import Source
from sslseg.data.store import Store, crop_to_rule
from sslseg.errors import SslsegError

INSTANCE_RULES = ("components", "map")


def components(mask: np.ndarray, min_area: int = 1) -> np.ndarray:
    """``K x H x W`` bool: the 8-connected components of ``mask == 1`` with >= ``min_area`` px."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        (mask == 1).astype(np.uint8), connectivity=8
    )
    keep = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= min_area]
    return labels[None] == np.array(keep, dtype=labels.dtype).reshape(-1, 1, 1)


def split_map(ids: np.ndarray, min_area: int = 1) -> np.ndarray:
    """``K x H x W`` bool: one mask per non-zero id of a label map, with >= ``min_area`` px."""
    values, counts = np.unique(ids[ids != 0], return_counts=True)
    keep = values[counts >= min_area]
    return ids[None] == keep.reshape(-1, 1, 1).astype(ids.dtype)


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """``K x 4`` float32 ``x1 y1 x2 y2`` boxes around ``K x H x W`` masks (pixel edges)."""
    out = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        out[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return out


def resize_ids(ids: np.ndarray, side: int, rule: str) -> np.ndarray:
    """A label map at ``side`` by nearest neighbour (ids are names, never averaged)."""
    ids = crop_to_rule(ids, rule)
    return cv2.resize(ids.astype(np.int32), (side, side), interpolation=cv2.INTER_NEAREST)


def instance_maps(source: Source, store: Store, rule: str) -> np.ndarray:
    """The store's items as instance label maps at its side (cached in the store folder)."""
    path = Path(store.root) / "instances.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    if not hasattr(source, "read_instances"):
        raise SslsegError(f"config: instances: source '{source.name}' has no instance maps")
    items = {it.id: it for it in source.items()}
    maps = np.stack(
        [resize_ids(source.read_instances(items[i]), store.side, rule) for i in store.ids]
    )
    tmp = path.with_name(f".instances.{os.getpid()}.npy")
    np.save(tmp, maps)
    tmp.rename(path)
    return np.load(path, mmap_mode="r")


def instances_of(
    rule: str, mask: np.ndarray | None, ids: np.ndarray | None, min_area: int
) -> np.ndarray:
    """One image's instances by ``rule``: components of ``mask`` or the ids of ``ids``."""
    if rule == "components":
        return components(mask, min_area)
    return split_map(np.asarray(ids), min_area)
