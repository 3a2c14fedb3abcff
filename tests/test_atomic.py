"""building(): a folder appears whole or not at all."""

from __future__ import annotations

import pytest

from sslseg.atomic import building


def test_a_finished_block_renames_and_a_failed_one_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "store"
    with building(target) as tmp:
        assert tmp.is_dir() and not any(tmp.iterdir()) and tmp.parent == target.parent
        (tmp / "a.txt").write_text("a")
    assert (target / "a.txt").read_text() == "a"
    assert [p.name for p in target.parent.iterdir()] == ["store"]  # no temporary left

    other = tmp_path / "out" / "other"
    with pytest.raises(KeyboardInterrupt), building(other) as tmp:
        (tmp / "half.txt").write_text("half")
        raise KeyboardInterrupt  # a kill half-way
    assert not other.exists()
    assert sorted(p.name for p in other.parent.iterdir()) == ["store"]


def test_a_folder_completed_first_elsewhere_is_kept_unless_replaced(tmp_path):
    target = tmp_path / "store"
    with building(target) as tmp:
        (tmp / "first").write_text("1")
        target.mkdir()  # another process renamed its copy into place meanwhile
        (target / "theirs").write_text("0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    assert [p.name for p in target.iterdir()] == ["theirs"]
    with building(target, replace=True) as tmp:
        (tmp / "ours").write_text("2")
    assert [p.name for p in target.iterdir()] == ["ours"]
