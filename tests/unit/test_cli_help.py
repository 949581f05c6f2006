"""Every verb, argument and option of the command line says what it is for, and `--wait` says the
same thing wherever it appears."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from batchk8s.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser, argparse.Action]]:
    """(verb path, its parser, an action) for every action of every parser, subcommands included."""
    for action in parser._actions:
        yield path, parser, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


def test_every_verb_argument_and_option_has_help():
    missing = []
    for path, _, action in walk(build_parser()):
        if isinstance(action, argparse._SubParsersAction):
            # an alias (a verb's old name) shares its verb's parser, and its help names it
            helped = {id(action.choices[choice.dest]) for choice in action._choices_actions if choice.help}
            missing += [" ".join((*path, name)) for name, sub in action.choices.items() if id(sub) not in helped]
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append(" ".join((*path, "/".join(action.option_strings) or action.dest)))
    assert missing == []


def test_the_walk_reaches_every_verb():
    """The help check above would pass on an empty walk: it must see the verbs users type."""
    verbs = {" ".join(path) for path, _, _ in walk(build_parser())}
    assert {"tes get", "tes list", "tes cancel", "tes wait", "vmss start", "pool create", "config check"} <= verbs


def test_wait_means_until_the_end_within_timeout_on_every_verb():
    waits = {" ".join(path): action for path, _, action in walk(build_parser()) if "--wait" in action.option_strings}
    assert {"vmss start", "vmss deallocate", "pool create", "pool resize", "pool delete", "workflow run",
            "tes submit"} <= set(waits)
    for verb, action in waits.items():
        assert "within --timeout (exit 3 if" in action.help, verb
        positional = {"tes submit": ["task.json"], "workflow run": ["k8s-info"]}.get(verb, [])
        parsed = build_parser().parse_args([*verb.split(), "--wait", *positional])
        assert parsed.wait not in (None, False, 0), verb  # the bare flag asks for the wait everywhere
