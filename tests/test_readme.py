"""The README is a user guide and the pages in docs/ hold the rest: the guide stays short, shows the commands a user
starts with (the four approaches as tests/test_configs.py composes them, the sweep, TensorBoard), names no path of a
developer's machine, and every link of the guide and the docs leads to a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_configs import APPROACHES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ROOT / "data" / "README.md", ROOT / "fer_lightning" / "weights" / "README.md", *DOCS]
LINK = re.compile(r"\]\(([^)\s]+)\)")
GUIDE_LINES = 220  # a guide of about 200 lines; the experiment record lives in docs/results.md


def readme() -> str:
    return README.read_text(encoding="utf-8")


def command_lines(text: str) -> list[str]:
    """Indented code lines, the comment after `#` cut off and spaces collapsed."""
    return [" ".join(line.split("#")[0].split()) for line in text.splitlines() if line.startswith("    ")]


def test_the_readme_is_a_guide_not_a_notebook() -> None:
    lines = readme().splitlines()
    assert len(lines) <= GUIDE_LINES, f"README.md has {len(lines)} lines: move long sections to docs/"
    assert "docs/results.md" in readme()


@pytest.mark.parametrize("overrides", list(APPROACHES), ids=lambda o: " ".join(o) or "defaults")
def test_the_readme_shows_each_approach_as_one_command(overrides: tuple[str, ...]) -> None:
    assert " ".join(["python -m fer_lightning.train", *overrides]) in command_lines(readme())


@pytest.mark.parametrize(
    "command",
    [
        "python -m fer_lightning.train -m model.lr=1e-3,3e-4 data.batch_size=64,128 model.dropout=0.3,0.5",
        "tensorboard --logdir outputs",
        "make demo",
        "make test",
    ],
)
def test_the_readme_shows_the_first_commands(command: str) -> None:
    assert command in command_lines(readme())


def test_the_readme_says_where_to_get_the_data_and_where_to_put_it() -> None:
    text = readme()
    for needed in ("fer2013.csv", "Challenges in Representation Learning", "data/fer2013", "FER_DATA_ROOT"):
        assert needed in text, needed


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_developer_machine_paths(page: Path) -> None:
    assert "../shared" not in page.read_text(encoding="utf-8"), page


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http://, https://, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.relative_to(ROOT)}: {target}"
        if anchor:
            assert anchor in anchors(file), f"{page.relative_to(ROOT)}: {target} (no such heading)"


def test_every_figure_in_docs_is_shown_somewhere() -> None:
    shown = "".join(page.read_text(encoding="utf-8") for page in PAGES)
    for figure in sorted((ROOT / "docs").glob("*.png")):
        assert f"]({figure.name})" in shown or f"](docs/{figure.name})" in shown, figure.name
