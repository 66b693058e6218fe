"""Module-to-module passes and the named pipelines."""
