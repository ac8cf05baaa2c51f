"""restorekit's built-in plugins, each a folder that a plugin author can copy."""
