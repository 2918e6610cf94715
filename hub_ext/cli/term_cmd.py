"""`goldenhub term`: being written (issue 9)."""


def add_parser(commands) -> None:
    pass
