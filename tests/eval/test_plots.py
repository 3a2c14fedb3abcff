import numpy as np
from PIL import Image

from sslseg.eval.plots import plot_label_fractions, plot_tsne


def test_fraction_plot_and_tsne_png_are_written(tmp_path):
    rows = [{"fraction": f, "accuracy": 0.3 + 0.3 * f} for f in (0.1, 0.5, 1.0)]
    path = plot_label_fractions(
        {"random": rows, "simclr": rows[::-1]},
        tmp_path / "f.png",
        knn={"random": 0.4, "simclr": 0.5},
    )
    assert Image.open(path).size[0] > 200
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(40, 2))
    labels = np.repeat(np.arange(4), 10)
    with_labels = plot_tsne(coords, labels[::-1], labels, tmp_path / "t.png", "t", ["a", "b"])
    no_labels = plot_tsne(coords, labels, None, tmp_path / "u.png")
    assert Image.open(with_labels).size[0] > Image.open(no_labels).size[0]
    assert not list(tmp_path.glob(".*tmp*"))
