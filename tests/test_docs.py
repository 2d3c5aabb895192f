"""The README and SECURITY.md stand on their own: a fresh clone has nothing outside the checkout."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT

LINK = re.compile(r"\]\(([^)#\s]+)[^)]*\)")
OUTSIDE = re.compile(r"(?<![\w/])\.\./[\w./-]+")


@pytest.mark.parametrize("doc", ["README.md", "SECURITY.md", "bench/README.md"])
def test_every_relative_link_resolves_inside_the_checkout(doc: str) -> None:
    text = (ROOT / doc).read_text()
    base = (ROOT / doc).parent
    broken = [
        target
        for target in LINK.findall(text)
        if "://" not in target
        and not target.startswith("mailto:")
        and not (
            (base / target).resolve().is_relative_to(ROOT) and (base / target).resolve().exists()
        )
    ]
    assert broken == []
    assert OUTSIDE.findall(text) == []
