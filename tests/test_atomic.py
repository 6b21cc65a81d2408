"""genlab.atomic.atomic_write: the previous complete file or the new one, never half of one."""

from __future__ import annotations

import pytest

from genlab.atomic import atomic_write


def test_a_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "new" / "finished.json"
    assert atomic_write(path, lambda partial: partial.write_text("one")) == path
    atomic_write(path, lambda partial: partial.write_text("two"))
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["finished.json"]


def test_a_write_stopped_halfway_keeps_the_previous_file(tmp_path):
    path = tmp_path / "cache.pt"
    atomic_write(path, lambda partial: partial.write_text("complete"))

    def killed(partial):
        partial.write_text("half")
        raise KeyboardInterrupt  # the job is stopped while it writes

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, killed)
    assert path.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["cache.pt"]
