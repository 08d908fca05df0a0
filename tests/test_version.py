"""One version: the package's, the changelog's newest section's, the docs'."""

import re
from pathlib import Path

import evoprune_sklearn

ROOT = Path(__file__).resolve().parents[1]


def _newest_changelog_section():
    text = (ROOT / "docs" / "changelog.rst").read_text(encoding="utf-8")
    versions = re.findall(r"(?m)^(\d+\.\d+\.\d+\S*)(?: \(unreleased\))?\n-{3,}$", text)
    assert versions, "docs/changelog.rst has no version sections"
    return versions[0]


def test_version_is_the_newest_changelog_section():
    assert evoprune_sklearn.__version__ == _newest_changelog_section()


def test_changelog_sections_are_newest_first():
    text = (ROOT / "docs" / "changelog.rst").read_text(encoding="utf-8")
    versions = re.findall(r"(?m)^(\d+)\.(\d+)\.(\d+)(?: \(unreleased\))?\n-{3,}$", text)
    keys = [tuple(map(int, v)) for v in versions]
    assert len(keys) >= 2 and keys == sorted(keys, reverse=True)
