"""Global-contrast saliency (HC, RC) and SaliencyCut, after Cheng et al. (CVPR 2011, TPAMI 2015).

Pure functions on uint8 RGB arrays; no torch, no training code. See ``docs/saliency.md``.
"""

from sslseg.saliency.batch import SaliencyResult, analyse, analyse_images, map_images
from sslseg.saliency.cut import saliency_cut
from sslseg.saliency.hc import hc
from sslseg.saliency.rc import RCResult, rc
from sslseg.saliency.regions import felzenszwalb, paint, split_by_mask

__all__ = [
    "RCResult",
    "SaliencyResult",
    "analyse",
    "analyse_images",
    "felzenszwalb",
    "hc",
    "map_images",
    "paint",
    "rc",
    "saliency_cut",
    "split_by_mask",
]
