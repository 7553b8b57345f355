"""The few exception classes synthaug raises on purpose.

Every message names the file or field at fault, says what is wrong and what to do. The CLI
turns a :class:`SynthaugError` into one line on stderr and a non-zero exit code; anything
else is a bug and keeps its traceback.
"""


class SynthaugError(Exception):
    """Base class of every error synthaug raises for bad input or a failed run."""


class DataError(SynthaugError):
    """A dataset, image file or manifest cannot be used as given."""


class ConfigError(SynthaugError):
    """A configuration file, option or argument is invalid."""


class GenerationError(SynthaugError):
    """Image generation failed in a way that retrying will not fix."""


class TrainingError(SynthaugError):
    """Training diverged (NaN/inf loss) or cannot proceed."""


class ExecutionError(SynthaugError):
    """A unit of work was lost more often than allowed (its worker process or node kept dying)."""
