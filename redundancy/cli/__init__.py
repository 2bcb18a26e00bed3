"""The command line, `python -m redundancy VERB` (or `redundancy VERB`): its flags (`parser`), its verbs (`verbs`)
and the CLI line a front end hands a user to run a job on their own machine (`commandline`)."""

from .verbs import main

__all__ = ["main"]
