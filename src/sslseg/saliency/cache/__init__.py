"""Offline saliency cache keyed by image content (the study's "offline augmentation with hashing").

Rezaei et al. (seed study, section 3.3.2): SaliencyCut ("SGD") is deterministic, so its
segmentation of an image never changes except in colour; it is computed once per image, found
again through a hash of the decoded pixels, and only recoloured at training time. Here the key
is the store's content hash (:func:`sslseg.data.store.content_hash`: blake2b of the decoded
``S x S x 3`` pixels the pretraining sees), so a renamed or duplicated file hits the same entry;
the entry itself is computed from the source image (at most 256 px on its longer side) and
resized to the store side, since saliency at 64-128 px is much worse (docs/saliency.md).

Parts:

- :mod:`~sslseg.saliency.cache.format`: folder name, ``meta.json``, fixed-size rows, the
  index, reading (:class:`SaliencyCache`, :class:`Entry`) and committing rows;
- :mod:`~sslseg.saliency.cache.locking`: the folder lock and atomic writes;
- :mod:`~sslseg.saliency.cache.filling`: source image -> working copy -> analysis -> rows on
  a process pool, and the link to a store (:func:`fill_store`);
- :mod:`~sslseg.saliency.cache.command`: ``sslseg saliency cache=true`` /
  ``python -m sslseg.saliency.cache``.
"""

from sslseg.saliency.cache.command import fill_store_cache, main
from sslseg.saliency.cache.filling import (
    COMMIT_EVERY,
    StoreSources,
    analyse_seeded,
    cache_for_store,
    default_workers,
    fill,
    fill_store,
    shrink,
    working_image,
)
from sslseg.saliency.cache.format import (
    CACHE_VERSION,
    FIELDS,
    SOURCE_SIDE,
    Entry,
    SaliencyCache,
    algorithm_fingerprint,
    default_folder,
    palette_bound,
)

__all__ = [
    "CACHE_VERSION",
    "COMMIT_EVERY",
    "FIELDS",
    "SOURCE_SIDE",
    "Entry",
    "SaliencyCache",
    "StoreSources",
    "algorithm_fingerprint",
    "analyse_seeded",
    "cache_for_store",
    "default_folder",
    "default_workers",
    "fill",
    "fill_store",
    "fill_store_cache",
    "main",
    "palette_bound",
    "shrink",
    "working_image",
]
