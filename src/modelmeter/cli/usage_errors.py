"""Bad arguments end a command with one line on stderr (``modelmeter bench: …``) and exit status 2,
Click's own parse errors included; shared by ``bench``, ``eval`` and ``runs``."""

from __future__ import annotations

from typing import Any, NoReturn

import click


class OneLineError(click.UsageError):
    """A usage error shown as one line (``modelmeter bench: …``), exit status 2."""

    def show(self, file: Any = None) -> None:
        names: list[str] = []
        ctx = self.ctx
        while ctx is not None and ctx.parent is not None:  # the root is "modelmeter" however it ran
            names.insert(0, ctx.info_name or "")
            ctx = ctx.parent
        click.echo(" ".join(["modelmeter", *names]) + f": {self.format_message()}", err=True)


def fail(message: str, ctx: click.Context | None = None) -> NoReturn:
    raise OneLineError(message, ctx or click.get_current_context(silent=True))


class _OneLine:
    """Click's own parse errors (unknown option, not a number…) as one line too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except OneLineError:
            raise
        except click.UsageError as exc:
            raise OneLineError(exc.format_message(), ctx) from None


class OneLineGroup(_OneLine, click.Group):
    pass


class OneLineCommand(_OneLine, click.Command):
    pass


def at_least(name: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        fail(f"{name} must be at least {minimum} (got {value})")


def above_zero(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        fail(f"{name} must be more than 0 (got {value:g})")
