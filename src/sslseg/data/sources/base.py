"""What every data source provides: a list of items and a way to read one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from sslseg.errors import SslsegError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
IGNORE = 255  # mask value excluded from loss and metrics
SHOWN = 10  # names listed in one error message before "and N more"


@dataclass(frozen=True)
class Item:
    """One example: an id, where its image lives, an optional mask path and label."""

    id: str
    image: Path
    mask: Path | None = None
    label: int = -1
    #: the split the layout itself assigns ("train" / "val" / "test"), or "" for none
    split: str = ""
    #: items made from one original (augmented copies of a tile) share a group
    group: str = ""


class Source:
    """A dataset layout. Subclasses set ``name``, fill ``items`` and may override readers."""

    name: ClassVar[str] = ""
    has_masks: ClassVar[bool] = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise SslsegError(f"{self.root}: data folder not found")
        self.class_names: list[str] = []  # filled by items() where labels have names

    def items(self) -> list[Item]:
        raise NotImplementedError

    def options(self) -> dict[str, object]:
        """Settings that change what is read (part of the store key)."""
        return {}

    def read_image(self, item: Item) -> np.ndarray:
        return read_rgb(item.image)

    def read_mask(self, item: Item) -> np.ndarray:
        """Binary mask: 1 foreground, 0 background, ``IGNORE`` excluded."""
        raise SslsegError(f"{self.name}: this source has no masks")

    def fingerprint(self) -> str:
        """Changes when the item list, a file's size/mtime or an option changes."""
        h = hashlib.blake2b(digest_size=12)
        h.update(f"{self.name}|{sorted(self.options().items())}".encode())
        for item in self.items():
            for path in (item.image, item.mask):
                if path is not None:
                    stat = path.stat()
                    h.update(f"{item.id}|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
            h.update(str(item.label).encode())
        return h.hexdigest()


def read_rgb(path: Path) -> np.ndarray:
    """Any image file as an HxWx3 uint8 RGB array (palette, RGBA and greyscale converted)."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise SslsegError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SslsegError(f"{path}: not a readable image ({exc.__class__.__name__})") from None


def read_label_image(path: Path) -> np.ndarray:
    """A mask/trimap file as a 2-D array of its stored values (no colour conversion).

    uint8 where every value fits, else the file's own integer type (16-bit instance maps keep
    their ids instead of wrapping around at 256).
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L"):
                img = img.convert("L")
            values = np.asarray(img)
            if values.dtype == np.uint8 or values.size == 0 or int(values.max()) < 256:
                return values.astype(np.uint8)
            return values.astype(np.int32)
    except FileNotFoundError:
        raise SslsegError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SslsegError(f"{path}: not a readable mask image ({exc.__class__.__name__})") from None


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def listed(names: list[str], sep: str = ", ", shown: int = SHOWN) -> str:
    """The first ``shown`` of ``names`` joined by ``sep``, then "and N more" for the rest: a
    message that names every bad file without running to pages."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return sep.join(names[:shown]) + more
