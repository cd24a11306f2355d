from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoops.common import yamlfile
from autoops.errors import CatalogInvalidError


def test_lines_are_remembered(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text("a:\n  b:\n    - 1\n    - c: 2\n")
    doc = yamlfile.load(path, CatalogInvalidError)
    assert yamlfile.line_of(doc, ["a", "b", 1, "c"]) == 4
    assert yamlfile.line_of(doc, ["a", "missing"]) == 1


@pytest.mark.parametrize(("text", "needle"), [("a: 1\na: 2\n", ":2: duplicate key 'a'"),
                                              ("1: x\n", "keys must be strings"),
                                              ("a: [\n", "x.yml:"),
                                              ("a: !!python/object:os.system x\n", "x.yml:")])
def test_bad_yaml_is_an_error_with_a_place(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "x.yml"
    path.write_text(text)
    with pytest.raises(CatalogInvalidError) as err:
        yamlfile.load(path, CatalogInvalidError)
    assert needle in err.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogInvalidError, match="cannot read"):
        yamlfile.load(tmp_path / "nope.yml", CatalogInvalidError)


@given(st.text(max_size=200))
def test_any_text_either_loads_or_raises_the_given_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.yml"
        path.write_text(text)
        with contextlib.suppress(CatalogInvalidError):
            yamlfile.load(path, CatalogInvalidError)
