"""``python -m railguard`` is the ``railguard`` command."""

from railguard.cli.main import main

main()
