"""Instance segmentation and detection: Mask R-CNN on an exported (or random) encoder."""
