"""Lambda entry points: each module wires one function and does nothing else."""
