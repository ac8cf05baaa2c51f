"""The exceptions restorekit raises for problems a user can fix.

Every error that reaches a user because of bad input (a file, a parameter, a
plugin) is a :class:`RestorekitError`. Its message names the problem and the
fix; the command line prints it without a traceback and exits with status 2.
What a user should know but that does not stop the work is a
:class:`RestorekitWarning`, shown on one line by :func:`one_line_warnings`.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator


class RestorekitError(Exception):
    """Base class: a problem the user can fix, described in the message."""


class InputError(RestorekitError, ValueError):
    """An input (image, kernel, mask, sigma, shape) is unusable."""


class ParameterError(RestorekitError, ValueError):
    """A restorer parameter is unknown or has a value it cannot take."""


class UnknownRestorerError(RestorekitError, KeyError):
    """No restorer is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(RestorekitError):
    """A plugin failed to import or registered something invalid."""


class DuplicateRestorerError(PluginError):
    """Two plugins registered a restorer under the same name."""


class RestorerFailedError(RestorekitError):
    """A restorer broke its contract: its code raised, or it returned something that is not a
    valid image for its input (wrong type, shape, dtype or device; NaN or Inf values).

    The message names the restorer, its plugin and the plugin's version; an exception raised
    inside the plugin's code is chained (``__cause__``) for its traceback.
    """


class ExtensionMissingError(RestorekitError, ImportError):
    """The compiled extension ``restorekit._C`` is not built."""


class WeightsError(RestorekitError):
    """A shipped or user weights file is missing, damaged or mismatched."""


class RestorekitWarning(UserWarning):
    """Something a user should know that does not stop the work (one line, e.g. a model used outside
    the degradation it was trained for). ``restorekit restore`` and ``bench`` print each on one line."""


@contextlib.contextmanager
def one_line_warnings(prefix: str = "restorekit: warning: ") -> Iterator[None]:
    """While active, show each :class:`RestorekitWarning` as one line ``prefix + message`` on stderr.

    Other warnings keep Python's display; everything is restored on exit.
    """
    with warnings.catch_warnings():
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, RestorekitWarning):
                print(f"{prefix}{message}", file=sys.stderr if file is None else file)
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("default", RestorekitWarning)
        yield
