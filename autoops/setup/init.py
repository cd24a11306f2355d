"""``autoops init DIR``: an operations repository of the user's own, from what autoops ships.

A built wheel carries the operations content (catalog, policy, ansible.cfg, playbooks,
roles, the autoops.ops collection, filter plugins and example inventories) under
``autoops/skeleton``; a source checkout is its own skeleton. Both go through
:func:`skeleton`, which ``setup.py`` also calls at build time, so what ``init`` lays
out of a checkout is what a wheel built from it ships, and neither can pick up an
environment's secrets, a private key, a cache or the lab.

Standard library and :mod:`autoops.errors` only: ``setup.py`` imports this module
before any dependency is installed.
"""

from __future__ import annotations

import os
import re
import stat
from contextlib import suppress
from pathlib import Path

from autoops.errors import AutoopsError, ContentInvalidError, InitDestinationError

SKELETON_DIR = "skeleton"  # inside the autoops package of a built wheel (never committed)
EXAMPLE_ENVS = ("local", "staging", "production")
# What the skeleton is made of, relative to the source. Every root must exist: a
# skeleton without its roles is a broken build, not a smaller one. Not in it:
# grant-keys/ and the lab inventory (one repository's own keys and hosts), other
# environments' inventories, and other collections than autoops' own.
ROOTS = ("ansible.cfg", "catalog.yml", "policy.yml", "playbooks", "roles", "runbooks",
         "filter_plugins", "collections/requirements.yml", "collections/ansible_collections/autoops",
         "inventories/README.md", *(f"inventories/{env}" for env in EXAMPLE_ENVS))
# Written, not copied: creation rules name one repository's age recipients, and a new
# repository's environments share no key with anyone's (`autoops secrets init` adds one).
SOPS_RULES = "sops-rules.yaml"
SOPS_RULES_TEXT = """\
---
# SOPS creation rules: one per environment, written by `autoops secrets init` and
# `autoops secrets rotate`. Each rule matches only its environment's files and holds
# only that environment's age recipient: staging and production share no key.
creation_rules: []
"""
FILE_MODE, DIR_MODE = 0o644, 0o755

# Directories never shipped: caches, tool state, version control, and roles' molecule
# scenarios (they need this repository's lab image and .config/molecule base config).
_SKIP_DIRS = frozenset({"__pycache__", "molecule"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".retry", ".swp", ".bak", ".orig", ".rej", "~",
                  ".tar.gz", ".tgz")
_KEEP_HIDDEN = frozenset({".gitkeep"})
# An environment's secrets by name: SOPS data files anywhere, and under inventories
# a file named secret(s)… or vault… (vars files and vault password files).
_SOPS_NAME = re.compile(r".*\.sops\.[A-Za-z0-9]+")
_INVENTORY_SECRET_NAME = re.compile(r"(secrets?|vault)([._-].*)?", re.IGNORECASE)
_KEY_NAME = re.compile(r"id_(rsa|dsa|ecdsa|ed25519)(_sk)?(\.pub)?|.*\.(pem|key|p12|pfx|jks|age|gpg)",
                       re.IGNORECASE)
# Encrypted content (someone's secrets, under any name) is left out; plaintext key
# material is refused: it is a leak to fix, and shipping around it would hide it.
# The patterns match the material itself (not code or docs that name its format).
_ENCRYPTED = re.compile(rb"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:|\$ANSIBLE_VAULT;1\.[12];AES256")
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]|"
                          rb"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}")


def skeleton(source: Path) -> dict[str, bytes]:
    """Every file of the operations skeleton in ``source``, by POSIX path relative to it."""
    files = {SOPS_RULES: SOPS_RULES_TEXT.encode()}
    for root in ROOTS:
        path = source / root
        if path.is_symlink():
            raise ContentInvalidError(f"{path} is a symbolic link: the skeleton ships files only")
        if path.is_file():
            _add(files, source, path)
        elif path.is_dir():
            _add_tree(files, source, path)
        else:
            raise AutoopsError(f"{path} is missing: the operations content is incomplete",
                               remedy="Restore it (`git status` in a checkout), or reinstall "
                                      "autoops from its wheel.")
    return dict(sorted(files.items()))


def _add_tree(files: dict[str, bytes], source: Path, top: Path) -> None:
    for here, dirs, names in os.walk(top):
        base = Path(here)
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(base / d))
        for name in sorted(names):
            _add(files, source, base / name)


def _skipped_dir(path: Path) -> bool:
    if path.is_symlink():
        raise ContentInvalidError(f"{path} is a symbolic link: the skeleton ships files only")
    return path.name.startswith(".") or path.name in _SKIP_DIRS


def _add(files: dict[str, bytes], source: Path, path: Path) -> None:
    name = path.relative_to(source).as_posix()
    base = path.name
    if (base.startswith(".") and base not in _KEEP_HIDDEN) or base.endswith(_SKIP_SUFFIXES) \
            or _SOPS_NAME.fullmatch(base) or _KEY_NAME.fullmatch(base) \
            or (name.startswith("inventories/") and _INVENTORY_SECRET_NAME.fullmatch(base)):
        return
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise ContentInvalidError(f"{path} is {what}: the skeleton ships files only")
    data = path.read_bytes()
    if _PRIVATE_KEY.search(data):
        raise ContentInvalidError(
            f"{path} holds a private key: it must never be shipped or copied",
            remedy="Move the key out of the repository (keys live in ~/.ssh or "
                   "~/.config/autoops) and rotate it; it may have been shared.")
    if not _ENCRYPTED.search(data):
        files[name] = data


def shipped_source() -> Path:
    """Where this installation's operations content is: the wheel's skeleton, or the checkout."""
    package = Path(__file__).resolve().parent.parent
    if (package / SKELETON_DIR).is_dir():
        return package / SKELETON_DIR
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "catalog.yml").is_file():
        return checkout
    raise AutoopsError(f"this autoops installation ({package}) ships no operations content",
                       remedy="Reinstall autoops from its wheel, or run `autoops init` from a "
                              "source checkout.")


def lay_out(dest: Path, *, source: Path | None = None) -> list[Path]:
    """Create an operations repository in ``dest`` (new or empty); return the files written.

    Everything is checked before anything is written, no file is ever overwritten
    (each is created exclusively), and a failure part-way removes what this call
    wrote. Files are 0644 and directories 0755 whatever the umask: a skeleton holds
    nothing private, and the service account must be able to read what it becomes.
    """
    files = skeleton(source or shipped_source())
    dest = dest.expanduser().absolute()
    _refuse_existing(dest)
    made_dirs: list[Path] = []
    written: list[Path] = []
    try:
        _make_dirs(dest, made_dirs)
        for name, data in files.items():
            target = dest / name
            _make_dirs(target.parent, made_dirs)
            _create(target, data)
            written.append(target)
    except BaseException as exc:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        for path in reversed(made_dirs):
            with suppress(OSError):  # not empty: someone else's file appeared in it
                path.rmdir()
        if isinstance(exc, FileExistsError):
            raise InitDestinationError(f"{exc.filename} appeared while writing {dest}") from None
        if isinstance(exc, OSError):
            raise InitDestinationError(f"cannot write {dest}: {exc.strerror}",
                                       remedy="Choose a directory you can write.") from None
        raise
    return written


def _refuse_existing(dest: Path) -> None:
    try:
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            raise InitDestinationError(f"{dest} exists and is not a directory")
        if dest.is_dir() and any(dest.iterdir()):
            raise InitDestinationError(f"{dest} exists and is not empty")
    except OSError as exc:
        raise InitDestinationError(f"cannot use {dest}: {exc.strerror}") from None


def _make_dirs(path: Path, made: list[Path]) -> None:
    """Create ``path`` and its missing parents, 0755, noting each one this call made."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for new in reversed(missing):
        new.mkdir(DIR_MODE)
        made.append(new)
        new.chmod(DIR_MODE)


def _create(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
