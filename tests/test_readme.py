"""The README's (and docs/api.md's) Python blocks run as written against the served demo gallery."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from serving import served

ROOT = Path(__file__).resolve().parent.parent
README_URL = "http://127.0.0.1:7860/"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)


@pytest.fixture(scope="module")
def demo_url():
    """The app as `python app.py` starts it: the embedded demo, real Lite2 weights, default options."""
    with served(["--device", "cpu"]) as url:
        yield url


def test_blocks_are_found():
    assert len(python_blocks(ROOT / "README.md")) == 1
    assert "Client(" in python_blocks(ROOT / "README.md")[0]


@pytest.mark.parametrize("page", ["README.md", "docs/api.md"])
def test_python_blocks_run_on_the_demo(page, demo_url, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the examples name photos by paths relative to the repository
    for block in python_blocks(ROOT / page):
        assert README_URL in block, "the example should connect where `python app.py` listens"
        code = block.replace(f'Client("{README_URL}")', f'Client("{demo_url}", verbose=False)')
        exec(compile(code, f"{page} python block", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    if page == "README.md":
        assert "shoes" in out and "1.0" in out  # it printed results, and /compare of a photo with itself
