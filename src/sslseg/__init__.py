"""sslseg: self-supervised pretraining of image encoders for foreground segmentation."""

__version__ = "0.1.0"
