"""The one exception type users see: its message is printed as a single line by the CLI."""


class SslsegError(Exception):
    """A problem with the user's input (file, config key, value) that is not a bug.

    The message must name the offending file or key; the CLI prints it on one line and
    exits non-zero without a traceback.
    """
