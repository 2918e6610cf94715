"""`goldenhub enrol`: being written (issue 9)."""


def add_parser(commands) -> None:
    pass
