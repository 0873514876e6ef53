"""Every public symbol of tfq_plus and tfq_plus.converters has a docstring.

The public API is what the packages export: the ``__all__`` of ``tfq_plus``, of
its public subpackages and modules, and of ``tfq_plus.converters``; for every
exported class also its public methods and properties. A class whose constructor
takes arguments documents them in an ``Args:`` / ``Arguments:`` section of its
docstring, naming each; an exported function's docstring names each of its
arguments. Every option of the ``tfq-plus`` command has a help text.
"""

import argparse
import inspect
import re
import types

import pytest

import tfq_plus
from tfq_plus import converters
from tfq_plus.converters import cli

PUBLIC_MODULES = (tfq_plus, converters)
PROJECT_PREFIX = "tfq_plus"
ARGUMENT_SECTIONS = ("Args:", "Arguments:")


def own_doc(obj) -> str:
    """The object's own docstring (not one inherited from a base class)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return (doc or "").strip()


def is_project_object(obj) -> bool:
    if isinstance(obj, property):
        obj = obj.fget
    return (getattr(obj, "__module__", None) or "").startswith(PROJECT_PREFIX)


def exported_names(module):
    """``(qualified name, object)`` of ``module.__all__``, recursing into exported modules."""
    assert hasattr(module, "__all__"), f"{module.__name__} defines no __all__"
    for name in module.__all__:
        obj = getattr(module, name)
        qualified = f"{module.__name__}.{name}"
        yield qualified, obj
        if isinstance(obj, types.ModuleType) and obj.__name__.startswith(PROJECT_PREFIX):
            yield from exported_names(obj)


def public_api():
    """``(qualified name, object)`` of every exported module, class and function
    defined in the project, once each (a symbol exported twice is checked once)."""
    seen = set()
    for package in PUBLIC_MODULES:
        yield package.__name__, package
        for qualified, obj in exported_names(package):
            if id(obj) in seen:
                continue
            if isinstance(obj, types.ModuleType) or (
                (inspect.isclass(obj) or inspect.isfunction(obj)) and is_project_object(obj)
            ):
                seen.add(id(obj))
                yield qualified, obj


def class_members(cls):
    """``(name, function or property)`` of the public methods and properties ``cls``
    defines itself (a property's doc is its getter's unless given to ``property``)."""
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if (inspect.isfunction(member) or isinstance(member, property)) and is_project_object(member):
            yield name, member


def named_parameters(function, skip_first: bool = False):
    """The names of ``function``'s parameters, without ``*args`` / ``**kwargs``."""
    parameters = list(inspect.signature(function).parameters.values())[int(skip_first):]
    return [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def constructor_parameters(cls):
    """The named arguments ``cls(...)`` takes itself (none if it inherits __init__)."""
    init = vars(cls).get("__init__")
    return named_parameters(init, skip_first=True) if inspect.isfunction(init) else []


def takes_arguments(cls) -> bool:
    """Whether ``cls(...)`` takes named arguments of its own (beyond ``**kwargs``)."""
    return bool(constructor_parameters(cls))


def unnamed(parameters, doc: str):
    return [name for name in parameters if not re.search(rf"\b{re.escape(name)}\b", doc)]


def missing_docstrings():
    """Every problem, one line each, naming the symbol."""
    problems = []
    for qualified, obj in public_api():
        if not own_doc(obj):
            problems.append(f"{qualified}: no docstring")
        if inspect.isfunction(obj) and own_doc(obj):
            for name in unnamed(named_parameters(obj), own_doc(obj)):
                problems.append(f"{qualified}: argument {name!r} is not described")
        if not inspect.isclass(obj):
            continue
        if takes_arguments(obj) and not any(s in own_doc(obj) for s in ARGUMENT_SECTIONS):
            problems.append(f"{qualified}: __init__ takes arguments but the class docstring "
                            "has no Args: section")
        elif own_doc(obj):
            for name in unnamed(constructor_parameters(obj), own_doc(obj)):
                problems.append(f"{qualified}: constructor argument {name!r} is not described")
        for name, member in class_members(obj):
            if not own_doc(member):
                problems.append(f"{qualified}.{name}: no docstring")
    return problems


def test_the_public_api_is_found():
    names = {qualified for qualified, _ in public_api()}
    for expected in ("tfq_plus.quantizers.PACT", "tfq_plus.callbacks.INQSchedule",
                     "tfq_plus.pruning.prune_and_quantize", "tfq_plus.converters.verify",
                     "tfq_plus.converters.Interpreter", "tfq_plus.datasets.load"):
        assert expected in names


def test_every_public_symbol_has_a_docstring():
    problems = missing_docstrings()
    assert not problems, "public symbols without documentation:\n" + "\n".join(problems)


def test_a_missing_docstring_is_named(monkeypatch):
    # The check itself must fail on an undocumented method and on a class whose
    # docstring does not describe its constructor's arguments.
    from tfq_plus.quantizers import PACT

    monkeypatch.setattr(PACT.deploy_grid, "__doc__", None)
    monkeypatch.setattr(PACT, "__doc__", "PACT, without its arguments.")
    problems = missing_docstrings()
    assert "tfq_plus.quantizers.PACT.deploy_grid: no docstring" in problems
    assert any(p.startswith("tfq_plus.quantizers.PACT: __init__ takes arguments") for p in problems)


def test_an_undescribed_argument_is_named(monkeypatch):
    from tfq_plus import converters
    from tfq_plus.quantizers import TTQ

    monkeypatch.setattr(TTQ, "__doc__", "TTQ.\n\n    Arguments:\n        threshold: t.\n")
    monkeypatch.setattr(converters.plan, "__doc__", "What each layer deploys to.")
    problems = missing_docstrings()
    assert "tfq_plus.quantizers.TTQ: constructor argument 'scale_init' is not described" in problems
    assert "tfq_plus.converters.plan: argument 'model' is not described" in problems


def subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


@pytest.mark.parametrize("command", [None, "convert", "verify", "report"])
def test_every_cli_option_has_help(command):
    parser = cli.build_parser()
    if command is not None:
        commands = subcommands(parser)
        assert command in commands.choices
        assert any(choice.dest == command and choice.help for choice in commands._choices_actions), (
            f"tfq-plus {command} has no help line in `tfq-plus --help`")
        parser = commands.choices[command]
    undocumented = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and not action.help
    ]
    assert not undocumented, f"tfq-plus {command or ''}: options without help: {undocumented}"
