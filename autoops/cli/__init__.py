"""The command line: parses, calls the library, renders, maps errors to exit statuses.

The only importer of ``argparse`` and of the renderer. It calls the engine and its
public services, never the guards, stores or runner directly.
"""
