"""Help pages that read the same on every Typer trickrun supports.

Typer's rich help panels change from release to release (0.29 prints `<bool>` after every
on/off flag, `{config}` and `{RUN...}...` in usage lines, and folds choices mid-word), so the
app uses click's plain layout (`rich_markup_mode=None`) and this command class, which owns the
three parts Typer still varies: the usage line, the Arguments section and the one-line
summary in the command list (the docstring's first sentence, never cut). It also catches, before
parsing, a `--set` or `--grid` value the shell split at its spaces (shellargs.py).
"""

from __future__ import annotations

import inspect
import re
import shutil

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from .shellargs import split_value_message

HELP_FLAGS = ("-h", "--help")


def first_sentence(text: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = inspect.cleandoc(text or "").split("\n\n")[0]
    paragraph = " ".join(paragraph.split())
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    return match.group(1) if match else paragraph


def argument_label(param: TyperArgument) -> str:
    """CONFIG, RUN or RUN...: the metavar (else the upper-case name), dots if it repeats."""
    label = param.metavar or (param.name or "").upper()
    if param.nargs != 1 and not label.endswith("..."):
        label += "..."
    return label


NARROW_HELP = 52  # click lays help out at 50 columns at least: narrower terminals fold it mid-word


def fit_help_width(ctx) -> None:
    """On a terminal narrower than click's least help width, lay the help out at its width."""
    if ctx.terminal_width is None:
        columns = shutil.get_terminal_size().columns
        if columns < NARROW_HELP:
            ctx.terminal_width = max(columns - 2, 20)


class Group(TyperGroup):
    """The app's group: its help, like every command's, fits a narrow terminal."""

    def get_help(self, ctx) -> str:
        fit_help_width(ctx)
        return super().get_help(ctx)


class Command(TyperCommand):
    """A Typer command whose help looks the same whichever Typer renders it."""

    def get_help(self, ctx) -> str:
        fit_help_width(ctx)
        return super().get_help(ctx)

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        """Refuse a --set or --grid value the shell split, saying how to quote it, as every
        usage error is refused: `error: ...` on stderr, exit 2."""
        message = None if any(a in HELP_FLAGS for a in args) else split_value_message(args)
        if message is not None:
            typer.echo(f"error: {message}", err=True)
            ctx.exit(2)
        return super().parse_args(ctx, args)

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or first_sentence(self.help)

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                label = argument_label(param)
                optional = not param.required and not label.startswith("[")
                pieces.append(f"[{label}]" if optional else label)
        return pieces

    def format_options(self, ctx, formatter) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                if not param.hidden:
                    arguments.append((argument_label(param), param.help or ""))
            elif (record := param.get_help_record(ctx)) is not None:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
