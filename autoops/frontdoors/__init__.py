"""Front doors other than the CLI, each through the same engine and gate.

:mod:`.tools` describes the catalog as MCP tools (pure: names, input schemas, the four
annotations from each action's risk class); :mod:`.mcp` serves them over stdio with the
official SDK, every call a run (or a plan, a status, an audit query) of the one engine.
"""
