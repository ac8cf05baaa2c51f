"""The ``restorekit`` command line: one module per command, thin over the Python API.

Each command module defines ``HELP`` (one line), ``DESCRIPTION`` (shown by
``restorekit COMMAND --help``), ``add_arguments(parser)`` and ``run(args) -> int``.
Command modules import nothing heavy at module level so that ``--help`` is quick.
"""
