r"""The click plumbing of ``archc``: ``archc FILE ...`` as a default command, and help and
errors that name only what a user can type.

``archc FILE --report`` runs the hidden command ``DEFAULT``; its usage line and hints read
``archc [OPTIONS] FILE``. Named commands (``archc check``, ``archc lint``, and any added
with ``@main.command()``) are :class:`SubCommand`\ s: an option of ``archc FILE`` given to
one of them (``archc check FILE --report``) gets a usage error that shows the right form.
"""

from __future__ import annotations

import difflib
import errno
import os
import sys
from pathlib import Path

import click


class UsageProblem(click.UsageError):
    """A usage error (exit 2) with archlang's wording."""


# errors of writing standard output, as opposed to reading an input
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EBADF}

DEFAULT = "compile"  # the command `archc FILE ...` runs


class DefaultContext(click.Context):
    """The default command's context: its usage line and hints read ``archc``, not
    ``archc compile`` (a command name the user never typed and help does not list)."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else super().command_path


class SubCommand(click.Command):
    """A named command (``archc check``, ``archc lint``, ...). An option that belongs to
    ``archc FILE`` instead (``archc check FILE --report``) gets a hint with the right form."""

    def parse_args(self, ctx, args):
        given = list(args)  # click's parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as err:
            default = ctx.parent.command.commands.get(DEFAULT) if ctx.parent is not None else None
            owner = next((p for p in default.params if err.option_name in p.opts), None) if default else None
            if owner is None:
                raise
            file = _first_positional(given, [*self.params, *default.params])
            choices = getattr(owner.type, "choices", None)
            value = "" if getattr(owner, "is_flag", False) else f" {'|'.join(choices) if choices else 'VALUE'}"
            raise UsageProblem(
                f"`{err.option_name}` is an option of `archc FILE`, not of `archc {ctx.info_name}`: "
                f"run `archc {file} {err.option_name}{value}`",
                ctx=ctx,
            ) from None


def _first_positional(args: list[str], params) -> str:
    """The first argument that is no option and no option's value (``FILE`` if none)."""
    takes_value = {o for p in params if isinstance(p, click.Option) and not p.is_flag for o in p.opts}
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in takes_value
        else:
            return arg
    return "FILE"


class DefaultCommand(click.Command):
    context_class = DefaultContext


class DefaultGroup(click.Group):
    """``archc FILE ...`` runs the default command; ``archc check FILE`` a named one.

    ``archc --help`` shows both forms and the default command's options."""

    command_class = SubCommand

    def main(self, *args, **kwargs):
        # standard output that cannot be written (`> /dev/full`, a closed pipe) is one line
        # and exit 1 for every command; click itself handles only a broken pipe, and only
        # while a command runs, not the flush at exit
        try:
            try:
                return super().main(*args, **kwargs)
            finally:
                if sys.stdout is not None:
                    sys.stdout.flush()
        except OSError as err:
            if err.errno not in _OUTPUT_ERRNOS:
                raise
            sys.stdout = open(os.devnull, "w")  # nothing more to flush at exit
            reason = (err.strerror or "").lower() or type(err).__name__
            click.echo(f"error[E110]: cannot write standard output: {reason}", err=True)
            sys.exit(1)

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version", "--list-specs"):
            self._refuse_command_typo(ctx, args[0])
            args = [DEFAULT, *args]
        return super().parse_args(ctx, args)

    def _refuse_command_typo(self, ctx, word: str) -> None:
        """``archc chek FILE``: a near-miss of a command name that is no file or spec."""
        visible = [name for name, cmd in self.commands.items() if not cmd.hidden]
        close = difflib.get_close_matches(word, visible, n=1, cutoff=0.75)
        if not close or word.startswith("-") or Path(word).exists():
            return
        from archlang.compiler import bundled_specs

        if word not in bundled_specs():
            raise UsageProblem(f"no command `{word}`: did you mean `archc {close[0]}`?", ctx=ctx)

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "[OPTIONS] FILE")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="       ")

    def format_commands(self, ctx, formatter):
        """Each command with its whole first sentence, wrapped: click cuts a summary at the
        line's width ("TARGET is..."), which reads as if the help were broken."""
        rows = [
            (name, cmd.get_short_help_str(limit=10_000))
            for name, cmd in sorted(self.commands.items())
            if not cmd.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_options(self, ctx, formatter):
        default = self.commands[DEFAULT]
        sub = default.make_context(DEFAULT, ["-"], parent=ctx, resilient_parsing=True)
        records = [p.get_help_record(sub) for p in default.get_params(sub) if p.name != "help"]
        with formatter.section("Options of archc FILE"):
            formatter.write_dl([r for r in records if r])
        super().format_options(ctx, formatter)
