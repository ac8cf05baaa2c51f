"""Sphinx extension of restorekit's docs: command-line help and gallery figures made by the build.

Two directives, for MyST pages:

``{restorekit-help} WORDS...``
    The text ``restorekit WORDS... --help`` prints, produced when the docs
    build by the same parser the console script uses (:func:`command_help`),
    so the guide's copy of every command's options cannot drift from the
    code. ``tests/test_docs.py`` checks that every command has one.

``{gallery-figure} NAME``
    Runs the gallery example ``NAME`` of :mod:`restorekit_gallery` (a short
    restoration of a scikit-image photo, seeded), writes its PNG under the
    build's doctree folder and shows it with its caption. Each example runs
    once per build.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.util import logging

sys.path.insert(0, str(Path(__file__).resolve().parent))

import restorekit_gallery  # noqa: E402  (the folder above is put on the path first)

logger = logging.getLogger(__name__)

#: Width of the help text, in columns (argparse reads $COLUMNS).
HELP_COLUMNS = 92


def command_help(words: list[str] | tuple[str, ...], columns: int = HELP_COLUMNS) -> str:
    """What ``restorekit WORDS... --help`` prints at ``columns`` columns (run in this process).

    Raises
    ------
    RuntimeError
        When the command does not print help and exit with status 0 (an unknown command, say).
    """
    from restorekit.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    status: object = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main([*words, "--help"])
            except SystemExit as exc:
                status = exc.code
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    if status not in (0, None) or not out.getvalue().strip():
        raise RuntimeError(f"'restorekit {' '.join(words)} --help' exited with {status!r}: {err.getvalue().strip()}")
    return out.getvalue().rstrip() + "\n"


class CommandHelp(Directive):
    """``{restorekit-help} WORDS...``: the help text of ``restorekit WORDS...``."""

    required_arguments = 0
    optional_arguments = 8
    has_content = False

    def run(self):
        words = list(self.arguments)
        try:
            text = command_help(words)
        except Exception as exc:  # a broken command must fail the build (-W), naming the page
            raise self.error(f"restorekit-help {' '.join(words)}: {exc}") from exc
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


#: The figures made in this build: name -> restorekit_gallery.Figure (each example runs once).
_MADE: dict = {}


def _gallery_dir(app) -> Path:
    return Path(app.doctreedir) / "restorekit-gallery"


class GalleryFigure(Directive):
    """``{gallery-figure} NAME``: run the gallery example NAME and show its figure."""

    required_arguments = 1
    has_content = False

    def run(self):
        env = self.state.document.settings.env
        app = env.app
        name = self.arguments[0]
        if name not in restorekit_gallery.FIGURES:
            raise self.error(f"gallery-figure: no example {name!r}; known: {', '.join(restorekit_gallery.FIGURES)}")
        made = _MADE
        path = _gallery_dir(app) / f"{name}.png"
        if name not in made:
            figure, seconds = restorekit_gallery.make_figure(name, path)
            made[name] = figure
            logger.info(f"gallery: {name} made in {seconds:.1f} s")
            for message in figure.warnings:
                logger.info(f"gallery: {name}: the restorers warned: {message}")
        figure = made[name]
        docdir = Path(env.doc2path(env.docname)).parent
        uri = os.path.relpath(path, docdir).replace(os.sep, "/")
        image = nodes.image(uri=uri, alt=figure.caption)
        node = nodes.figure("", image)
        node["align"] = "center"
        scores = "; ".join(f"{p.title}: {p.psnr:.2f} dB" for p in figure.panels if p.psnr is not None)
        text = f"{figure.caption} PSNR against the clean image: {scores}."
        node += nodes.caption(text, text)
        return [node]


def setup(app):
    app.add_directive("restorekit-help", CommandHelp)
    app.add_directive("gallery-figure", GalleryFigure)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
