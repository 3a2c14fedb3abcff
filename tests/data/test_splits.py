import numpy as np
import pytest

from sslseg.data.splits import make_split
from sslseg.errors import SslsegError

IDS = [f"img_{i:03d}" for i in range(200)]


def test_fractions_sizes_and_disjointness():
    split = make_split(IDS, 0.8, seed=3)
    assert len(split.test) == 40
    assert len(split.dev) == 160 and len(split.val) == 16 and len(split.train) == 144
    parts = [set(split.train), set(split.val), set(split.test)]
    assert sum(len(p) for p in parts) == len(set().union(*parts))


def test_same_test_set_and_nested_dev_sets():
    splits = {f: make_split(IDS, f, seed=7) for f in (0.8, 0.5, 0.2)}
    tests = {tuple(s.test) for s in splits.values()}
    assert len(tests) == 1
    assert set(splits[0.2].dev) <= set(splits[0.5].dev) <= set(splits[0.8].dev)


def test_pure_function_of_ids_and_seed():
    a = make_split(IDS, 0.5, seed=1)
    b = make_split(list(reversed(IDS)), 0.5, seed=1)
    assert [IDS[i] for i in a.test] == sorted(list(reversed(IDS))[i] for i in b.test)
    c = make_split(IDS, 0.5, seed=2)
    assert not np.array_equal(a.test, c.test)


@pytest.mark.parametrize("fraction", [0.0, 0.9, 1.5])
def test_impossible_fraction(fraction):
    with pytest.raises(SslsegError, match="dev_fraction"):
        make_split(IDS, fraction, seed=0)


def test_pretraining_leaves_out_the_test_set_fine_tuning_scores_on():
    from sslseg.data.splits import holdout, pretraining_rows, pretraining_saw

    ids = [f"img{k:03d}" for k in range(50)]
    rest, test = holdout(ids, 0.2, seed=3)
    for fraction in (0.8, 0.2):
        assert np.array_equal(make_split(ids, fraction, seed=3).test, test)
    rows = pretraining_rows("sample", ids, {"fraction": 0.2, "seed": 3})
    assert np.array_equal(rows, rest) and not set(rows) & set(test)
    assert pretraining_rows("sample", ids, None) is None
    meta = {"data": {"source": "sample", "root": ""}, "holdout": {"fraction": 0.2, "seed": 3}}
    seen = pretraining_saw(meta, "sample", "", ids)
    assert seen == {ids[i] for i in rest}
    assert pretraining_saw({**meta, "holdout": None}, "sample", "", ids) == set(ids)
    assert pretraining_saw(meta, "oxford-pet", "", ids) == set()


def test_a_standard_test_split_is_never_pretrained_on_by_default():
    from sslseg.config import load_config
    from sslseg.data.splits import pretraining_rows
    from sslseg.ssl.command import PretrainConfig

    assert pretraining_rows("cifar10", ["train/1"], {"fraction": 0.2, "seed": 0}) is None
    with pytest.raises(SslsegError, match="source_options.split: 'all' holds cifar10's test"):
        load_config(PretrainConfig, None, ["source=cifar10", "source_options={split: all}"])
    cfg = load_config(
        PretrainConfig, None, ["source=cifar10", "source_options={split: all}", "transductive=true"]
    )
    assert cfg.holdout() is None
