"""Errors a user can cause or fix, each carrying the exit code the CLI turns it into.

Exit codes: 0 success (a diverged run is a result, so 0 too), 1 run-directory or disk
failure, 2 bad usage or config, 3 data missing or unverifiable, 130 interrupted.
"""


class TrickrunError(Exception):
    """Base class: `str(err)` is the message shown to the user, `exit_code` what the CLI returns."""

    exit_code = 1


class ConfigError(TrickrunError):
    """A config file, `--set` override or command-line argument is wrong."""

    exit_code = 2


class DataError(TrickrunError):
    """Dataset files are missing, corrupt, or could not be downloaded and verified."""

    exit_code = 3


class RunDirError(TrickrunError):
    """The runs folder or a run directory cannot be written or read."""

    exit_code = 1
