from __future__ import annotations

from pathlib import Path

import pytest

from autoops.settings import Settings
from tests.conftest import REPO


def test_state_dir_follows_xdg_and_override() -> None:
    xdg = Settings.from_environ({"HOME": "/home/u", "XDG_STATE_HOME": "/x/state"})
    assert xdg.state_dir == Path("/x/state/autoops")
    home = Settings.from_environ({"HOME": "/home/u"})
    assert home.state_dir == Path("/home/u/.local/state/autoops")
    explicit = Settings.from_environ({"HOME": "/home/u", "AUTOOPS_STATE_DIR": "/s"})
    assert explicit.state_dir == Path("/s")


def test_project_is_never_taken_from_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "catalog.yml").write_text("version: 1\nactions: {}\n")
    monkeypatch.chdir(tmp_path)
    assert Settings.from_environ({"HOME": "/h"}).project_dir == REPO
    custom = Settings.from_environ({"HOME": "/h", "AUTOOPS_PROJECT_DIR": str(tmp_path)})
    assert custom.project_dir == tmp_path
    assert custom.catalog_path == tmp_path / "catalog.yml"
