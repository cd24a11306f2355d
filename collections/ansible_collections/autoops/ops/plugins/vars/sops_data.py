"""community.sops' vars plugin, with decrypted values as data: never templates.

community.sops (2.2 on ansible-core 2.19) marks every decrypted string "trusted as
template", so a secret whose value holds ``{{ lookup('pipe', …) }}`` would run on the
controller when a task uses it (and Jinja drops a trailing newline from every value).
A secret is a value an operator typed, not playbook code: this plugin loads the same
files with the same options (``[community.sops]`` in ansible.cfg) and hands Ansible the
values unmarked, so they reach tasks exactly as stored.
"""

from typing import Any

from ansible.utils.unsafe_proxy import wrap_var
from ansible_collections.community.sops.plugins.vars import sops as _community

DOCUMENTATION = _community.DOCUMENTATION.replace(
    "name: sops\n", "name: sops_data\n", 1).replace(
    "short_description: Loading SOPS-encrypted vars files",
    "short_description: Loading SOPS-encrypted vars files as data, never templates", 1)


class VarsModule(_community.VarsModule):  # type: ignore[misc] # untyped base
    """Decrypt like community.sops.sops, then untrust every value (see the module docstring)."""

    def get_vars(self, loader: Any, path: str, entities: Any, cache: bool | None = None) -> Any:
        return wrap_var(super().get_vars(loader, path, entities, cache))
