"""``sslseg quickstart``: the experiment command's miniature on the embedded sample."""

from sslseg.experiments.command import add_quickstart_arguments as add_arguments
from sslseg.experiments.command import run_quickstart as run

__all__ = ["add_arguments", "run"]
