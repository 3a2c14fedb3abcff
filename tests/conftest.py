import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Stores built by tests live in a per-session folder, never the user's cache."""
    os.environ["SSLSEG_CACHE"] = str(tmp_path_factory.mktemp("sslseg-cache"))
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """3 classes x 8 images of 16 px, each class a distinct colour with noise."""
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 220, 40), (40, 40, 220)]
    for name, colour in zip(("red", "green", "blue"), colours, strict=True):
        (root / name).mkdir(parents=True)
        for i in range(8):
            img = np.clip(np.array(colour) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i}.png")
    return root
