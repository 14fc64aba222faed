"""The ``python`` engine: processors run in a Python process, in topological order."""
