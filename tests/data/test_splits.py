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
