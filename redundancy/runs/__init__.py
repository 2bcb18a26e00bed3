"""Runs: a run directory on disk (`rundir.RunDir`: its files, manifest and checks), resuming a killed search
(`resume`), writing a finished search's files (`writers`), and applying a found set to new images (`apply`).

Nothing is imported here: `runs.rundir` is read by figures and the CLI without the model stack.
"""
