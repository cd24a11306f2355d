"""Build hooks only (the metadata is pyproject.toml's): ship the operations content.

``build_py`` writes the skeleton (catalog, policy, ansible.cfg, playbooks, roles, the
autoops.ops collection, filter plugins, example inventories) into the built package
as ``autoops/skeleton/…``, and ``sdist`` carries the same files so that a wheel built
from the sdist is the same wheel. Both take the selection from
:func:`autoops.setup.init.skeleton`, the one ``autoops init`` applies to a checkout,
so what is shipped and what is excluded (secrets, keys, caches, the lab) is decided
in one place.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from autoops.setup import init as skeleton_rules  # noqa: E402 - from this tree, not an installed copy

if not Path(skeleton_rules.__file__).resolve().is_relative_to(HERE):
    raise RuntimeError(f"setup.py imported autoops from {skeleton_rules.__file__}, not {HERE}")


class BuildPyWithSkeleton(build_py):
    """build_py, then the operations skeleton into the built package (not in editable mode)."""

    def initialize_options(self) -> None:
        super().initialize_options()
        self.skeleton_outputs: list[str] = []

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install lays out from the checkout itself
            return
        base = Path(self.build_lib, "autoops", skeleton_rules.SKELETON_DIR)
        shutil.rmtree(base, ignore_errors=True)  # nothing stale from an earlier build
        for name, data in skeleton_rules.skeleton(HERE).items():
            target = base / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(skeleton_rules.FILE_MODE)
            self.skeleton_outputs.append(str(target))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *self.skeleton_outputs]


class SdistWithSkeleton(sdist):
    """sdist, with every source file of the skeleton (what build_py needs to rebuild it)."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        # the generated sops-rules.yaml is written by build_py, never read from the source
        extra = [name for name in skeleton_rules.skeleton(HERE)
                 if name != skeleton_rules.SOPS_RULES and name not in files]
        super().make_release_tree(base_dir, [*files, *extra])


setup(cmdclass={"build_py": BuildPyWithSkeleton, "sdist": SdistWithSkeleton})
