"""`config check`: every setting (secrets masked, an invalid one as given), what each feature still
needs, and every problem, at once; `config reference`: the generated settings page of the docs."""

from __future__ import annotations

import argparse
from typing import Any

from batchk8s.commands import Output
from batchk8s.errors import EXIT_INPUT
from batchk8s.settings import REQUIREMENTS, SUPPORTING_FEATURES, TIMERS, Settings, env_name, written


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    config = subparsers.add_parser("config", help="inspect the settings")
    verbs = config.add_subparsers(dest="verb", required=True, metavar="VERB")
    check = verbs.add_parser("check", parents=[common], help="validate every setting and list all problems")
    check.set_defaults(handler=check_config)
    reference = verbs.add_parser("reference", parents=[common],
                                 help="print the settings reference in Markdown (docs/settings.md)")
    reference.set_defaults(handler=print_reference)


def print_reference(args: argparse.Namespace, settings: Settings) -> Output:
    from batchk8s.settings_reference import markdown

    text = markdown()
    # print() ends the text with the newline the Markdown file ends with.
    return Output({"markdown": text}, text.rstrip("\n"))


def check_config(args: argparse.Namespace, settings: Settings) -> Output:
    """Exit 2 when a setting has a problem, or when no feature is ready (nothing configured passes no
    check); 0 when every setting given is valid and at least one feature can run, however few."""
    report = settings.report()
    invalid = set(report["invalid"])
    lines = ["settings:"]
    lines += [f"  {name} = {written(value)}" + (" (invalid)" if name in invalid else "")
              for name, value in report["settings"].items() if value not in (None, [])]
    access = report["storage"]
    if access:
        identity = access["mode"] == "identity"
        who = f" ({access['credential']}, client id {access['clientId'] or 'default'})" if identity else ""
        lines.append(f"storage: {access['mode']}{who}" + (f" at {access['endpoint']}" if access["endpoint"] else ""))
    lines.append("features:")
    lines += [f"  {name}: {_feature_line(settings, name)}" for name in report["features"]]
    lines.append("timers:")
    for name, timer in report["timers"].items():
        schedule = timer["schedule"] or "(unset)"
        schedule += " (invalid)" if timer["scheduleSetting"] in invalid else ""
        lines.append(f"  {name}: " + (f"on, schedule {schedule}" if timer["enabled"]
                                      else f"off ({timer['disabledBy']})"))
    lines += [f"warning: {warning}" for warning in report["warnings"]]
    usable = [name for name, state in report["features"].items() if state["ready"] and name not in SUPPORTING_FEATURES]
    if report["problems"]:
        lines.append(f"{len(report['problems'])} problem(s):")
        lines += [f"  - {p['field']}: {p['message']}" for p in report["problems"]]
    elif not usable:
        lines.append("no problems, but nothing is ready: no feature has the settings it needs (see features)")
    else:
        lines.append(f"no problems; ready: {', '.join(usable)}")
    return Output(report, "\n".join(lines), EXIT_INPUT if report["problems"] or not usable else 0)


def _feature_line(settings: Settings, feature: str) -> str:
    """The feature's state and, when something is missing, what to set (alternatives joined by "or")."""
    state = settings.feature_state(feature)
    if state == "off":
        timer = next(timer for timer in TIMERS if timer.feature == feature)
        return f"off ({env_name(timer.disabled_attr)}=true)"
    if state == "blocked":
        return "blocked until the problems below are fixed"
    wanted, wrong = [], []
    for alternatives in REQUIREMENTS[feature]:
        if any(getattr(settings, attr) for attr in alternatives):
            continue
        names = [env_name(attr) for attr in alternatives]
        bad = [name for name in names if name in settings.invalid]
        (wrong if bad else wanted).append(" or ".join(bad or names))
    steps = ([f"set {', '.join(wanted)}"] if wanted else []) + ([f"fix {', '.join(wrong)}"] if wrong else [])
    return f"{state}: {'; '.join(steps)}" if steps else state
