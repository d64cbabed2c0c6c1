"""Files appear whole or not at all: written beside the final name, synced, renamed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_lightning.core.files import partial_path, write_atomically, write_json, write_text


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.md"
    write_text("old", path)
    seen = []

    def failing(partial: Path) -> None:
        seen.append(partial)
        partial.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, failing)
    assert path.read_text() == "old" and [p.name for p in path.parent.iterdir()] == ["report.md"]
    assert seen == [partial_path(path)] and seen[0].parent == path.parent and seen[0].suffix == ".md"
    write_json({"b": 1, "a": 2}, path.with_suffix(".json"))
    assert path.with_suffix(".json").read_text() == '{\n  "a": 2,\n  "b": 1\n}'
