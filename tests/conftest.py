import os
import shutil
from collections.abc import Iterator
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "no_gpu: asks for a GPU to check its one-line error; skipped with CUDA"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    import torch

    if not torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="this machine has the GPU asked for")
    for item in items:
        if item.get_closest_marker("no_gpu"):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.sslseg_failed = True
    return report


@pytest.fixture
def tmp_path(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """pytest's ``tmp_path``, deleted after a test that passed. pytest keeps every test's
    folder until the session ends; the study tests train real U-Nets (115 MB of weights a
    cell), and the whole suite kept 20 GB, more than a CI machine's disk had free."""
    yield tmp_path
    if not getattr(request.node, "sslseg_failed", False):
        shutil.rmtree(tmp_path, ignore_errors=True)


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
