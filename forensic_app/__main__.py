"""Entry point: the window without a subcommand (``forensic-app [PATH]``), the CLI with one."""

from __future__ import annotations

import sys

CLI_COMMANDS = {"analyze", "batch", "report", "case", "info"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] in CLI_COMMANDS or args[0] in ("--version", "-V", "-h", "--help")):
        from forensic_app.cli import main as cli_main

        return cli_main(args)
    from forensic_app.gui.app import run_gui

    return run_gui(args)


if __name__ == "__main__":
    raise SystemExit(main())
