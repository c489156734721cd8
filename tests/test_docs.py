"""README and docs/: every code fence is paired, every relative link (and its #anchor) resolves, sizes hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def fences(text: str) -> list[tuple[int, str]]:
    """(line number, info string) of each fence that opens a block; raises AssertionError on an unclosed one."""
    opened: list[tuple[int, str]] = []
    open_at, marker = None, ""
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if not m:
            continue
        if open_at is None:
            open_at, marker = n, m.group(1)
            opened.append((n, m.group(2).strip()))
        elif m.group(1)[0] == marker[0] and len(m.group(1)) >= len(marker) and not m.group(2).strip():
            open_at = None
    assert open_at is None, f"the code fence opened on line {open_at} is never closed"
    return opened


def prose(text: str) -> str:
    """The text outside code blocks (links inside code are code)."""
    out, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    h = re.sub(r"[*_`]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", h).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            s = slug(m.group(1))
            n = 1
            while s in found:
                s = f"{slug(m.group(1))}-{n}"
                n += 1
            found.add(s)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_fences_are_paired(page):
    fences(page.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for m in LINK.finditer(prose(page.read_text())):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: link to {target} -> {dest} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{page.name}: no heading #{anchor} in {dest.name}"


def test_checks_catch_broken_pages(tmp_path):
    with pytest.raises(AssertionError, match="never closed"):
        fences("text\n```python\nx = 1\n")
    assert fences("```bash\nls\n```\n````md\n```\n````\n") == [(1, "bash"), (4, "md")]
    page = tmp_path / "p.md"
    page.write_text("# A title, here\n")
    assert anchors(page) == {"a-title-here"}


def test_readme_is_for_users():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 300, f"README.md has {len(lines)} lines: move detail to docs/"
    assert (ROOT / "docs" / "screenshot.png").exists()


def test_app_py_is_thin():
    lines = (ROOT / "app.py").read_text().splitlines()
    assert len(lines) < 150, f"app.py has {len(lines)} lines: UI code belongs in cbir/ui/"
