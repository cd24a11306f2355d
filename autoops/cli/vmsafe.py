"""``vm-safe VERB HOST [k=v …]``: one action on one host, never production by default."""

from __future__ import annotations

from collections.abc import Sequence

from autoops.errors import BadInputError

# One line, like every remedy: VERB is an action's vm-safe verb (`autoops show ACTION`),
# HOST one inventory host, ENV defaults to local (never production).
VM_SAFE_USAGE = ("Usage: vm-safe VERB HOST [KEY=VALUE ...] [--env ENV] [--check] [--json] "
                 "(verbs: `autoops list`; --env defaults to local, never production).")


def vm_safe_argv(argv: Sequence[str]) -> list[str]:
    """Translate ``vm-safe VERB HOST k=v … [--env E]`` into ``autoops run`` arguments."""
    words = list(argv)
    if not words or words[0] in {"-h", "--help"}:
        raise BadInputError("vm-safe needs a verb and a host", remedy=VM_SAFE_USAGE)
    flags = [w for w in words if w.startswith("--")]
    env = "local"
    if "--env" in words:
        idx = words.index("--env")
        if idx + 1 >= len(words):
            raise BadInputError("--env needs a value", remedy=VM_SAFE_USAGE)
        env = words[idx + 1]
        del words[idx:idx + 2]
        flags.remove("--env")
    positional = [w for w in words if not w.startswith("--")]
    unknown = set(flags) - {"--check", "--json"}
    if unknown or len(positional) < 2:
        raise BadInputError(f"vm-safe: cannot read {' '.join(argv)!r}", remedy=VM_SAFE_USAGE)
    verb, host, *pairs = positional
    if any(ch in host for ch in ":&!*,[]~^$"):
        raise BadInputError(f"vm-safe acts on one host; {host!r} is a pattern",
                            remedy="Use `autoops run --limit PATTERN` for several hosts.")
    out = ["run", verb, "--env", env, "--limit", host, "--one-host", *flags]
    for pair in pairs:
        out += ["-p", pair]
    return out
