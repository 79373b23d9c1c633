"""The pluggy plugin manager: discovery, selection, isolation of broken plugins, attribution.

Installed plugins are found through the ``crmcore.plugins`` entry-point
group, one at a time, so that one that fails to import (or to register) is
recorded as broken under its name instead of taking every other plugin down.
Which plugins load is chosen by :class:`PluginSelection` (the
``CRM_LOAD_PLUGINS`` and ``CRM_DISABLE_PLUGINS`` environment variables, the
``--plugins``/``--no-plugin`` options of ``crm``, ``[plugins] disabled``).

Every hook implementation is attributed to its plugin (see
:func:`attribute_hook`): calls still run through pluggy's own call loop (so
wrappers, ``tryfirst``/``trylast`` and hook-call monitoring work), and an
exception or an answer can be traced back to the plugin that raised or gave it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.metadata
import inspect
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import Distribution, EntryPoint
from typing import Any

import attrs
import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from crmcore.errors import CRMError, PluginError
from crmcore.hooks import PROJECT_NAME, specs

#: Entry-point group through which installed plugins register.
ENTRY_POINT_GROUP = "crmcore.plugins"
#: Comma-separated names: only these installed plugins load (empty: none).
LOAD_ENV = "CRM_LOAD_PLUGINS"
#: Comma-separated names of plugins that do not load.
DISABLE_ENV = "CRM_DISABLE_PLUGINS"
#: The module (or class) attribute in which a plugin declares what it needs.
REQUIRES_ATTRIBUTE = "crm_requires"

_FAILED_PLUGIN = "_crm_failed_plugin"
_ATTRIBUTED = "_crm_attributed"
_answers: contextvars.ContextVar[list[tuple[str, object]] | None] = contextvars.ContextVar(
    "crm_hook_answers", default=None
)


def split_names(value: str | None) -> frozenset[str]:
    """Plugin names from a comma- (or space-) separated list."""
    return frozenset(n for n in (value or "").replace(",", " ").split() if n)


@attrs.frozen
class PluginSelection:
    """Which installed plugins load: ``load`` (``None``: all) minus ``disabled``.

    ``disabled`` also applies to plugins given in code; ``load`` only to
    installed (discovered) ones, since plugins given in code are chosen
    explicitly.
    """

    load: frozenset[str] | None = None
    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> PluginSelection:
        """``CRM_LOAD_PLUGINS`` (set, even empty: only those) and ``CRM_DISABLE_PLUGINS``."""
        env = os.environ if environ is None else environ
        load = split_names(env[LOAD_ENV]) if LOAD_ENV in env else None
        return cls(load=load, disabled=split_names(env.get(DISABLE_ENV)))

    def narrowed(
        self, load: Iterable[str] | None = None, disabled: Iterable[str] = ()
    ) -> PluginSelection:
        """A copy with ``load`` replacing its own (when given) and more disabled names."""
        return PluginSelection(
            load=self.load if load is None else frozenset(load),
            disabled=self.disabled | frozenset(disabled),
        )

    def why_skipped(self, name: str, *, discovered: bool) -> str | None:
        """Why ``name`` does not load (``"disabled"``, ``"not selected"``), or ``None``."""
        if name in self.disabled:
            return "disabled"
        if discovered and self.load is not None and name not in self.load:
            return "not selected"
        return None


@attrs.frozen
class PluginInfo:
    """What ``crm plugins list`` shows about one plugin.

    ``status`` is ``enabled``, ``disabled``, ``not selected`` or ``broken``;
    ``problem`` says what broke (one line) for a broken plugin.
    """

    name: str
    version: str | None
    distribution: str | None
    hooks: tuple[str, ...]
    status: str = "enabled"
    problem: str | None = None


class CRMPluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering the plugins that could not load and those left out.

    ``broken`` maps a plugin's name to a one-line reason, ``skipped`` to why it
    was not loaded; ``distributions`` the installed ones to their distribution;
    ``withheld`` plugins given in code but disabled (their migration scripts
    stay known).
    """

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.broken: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.distributions: dict[str, importlib.metadata.Distribution] = {}
        self.withheld: dict[str, object] = {}


def plugin_name_of(plugin: object) -> str:
    """The name a plugin passed in code registers under.

    A module's or class's ``crm_plugin_name`` attribute, else its ``__name__``,
    else its class name.
    """
    name = getattr(plugin, "crm_plugin_name", None) or getattr(plugin, "__name__", None)
    return str(name or type(plugin).__name__)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _entry_points() -> Iterator[tuple[EntryPoint, Distribution]]:
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP and ep.name not in seen:
                seen.add(ep.name)
                yield ep, dist


def _register(pm: CRMPluginManager, plugin: object, name: str) -> None:
    """Register ``plugin``; on failure leave nothing of it behind and record it as broken."""
    try:
        pm.register(plugin, name=name)
    except CRMError as exc:
        _unregister(pm, name)
        pm.broken[name] = str(exc)
    except Exception as exc:
        _unregister(pm, name)
        pm.broken[name] = _one_line(exc)
    else:
        attribute_plugin(pm, plugin)


def _unregister(pm: pluggy.PluginManager, name: str) -> None:
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)


def make_plugin_manager(
    plugins: Iterable[object] = (),
    *,
    discover: bool = True,
    disabled: Iterable[str] = (),
    selection: PluginSelection | None = None,
    strict: bool = True,
) -> CRMPluginManager:
    """Create the manager: core specs, then installed plugins, then plugins given in code.

    Names in ``disabled`` (and the selection's) are blocked, whether
    discovered or given in code; ``selection`` defaults to the environment's
    (:meth:`PluginSelection.from_environment`). A plugin that fails to
    import, to register or to add its hook specifications is recorded in
    ``pm.broken``; with ``strict`` (what :meth:`CRM.open` uses) the first one
    raises a :class:`PluginError` naming it.
    """
    chosen = (selection or PluginSelection.from_environment()).narrowed(disabled=disabled)
    pm = CRMPluginManager()
    pm.add_hookspecs(specs)
    # Historic and called before any plugin registers: each plugin's
    # crm_add_hookspecs then runs during its own registration, so a failure
    # there is that plugin's alone.
    pm.hook.crm_add_hookspecs.call_historic(kwargs={"pm": pm})
    for name in chosen.disabled:
        pm.set_blocked(name)
    if discover:
        for ep, dist in _entry_points():
            reason = chosen.why_skipped(ep.name, discovered=True)
            if reason is not None:
                pm.skipped[ep.name] = reason
                continue
            pm.distributions[ep.name] = dist
            try:
                plugin = ep.load()
            except Exception as exc:
                pm.broken[ep.name] = f"failed to import: {_one_line(exc)}"
                continue
            _register(pm, plugin, ep.name)
    for plugin in plugins:
        name = plugin_name_of(plugin)
        if pm.is_blocked(name):
            pm.skipped[name] = "disabled"
            pm.withheld[name] = plugin
            continue
        if pm.has_plugin(name):
            raise PluginError(f"plugin {name!r} is registered twice")
        _register(pm, plugin, name)
    _check_pending(pm)
    if strict:
        raise_if_broken(pm)
    return pm


def _check_pending(pm: CRMPluginManager) -> None:
    """Unregister (as broken) each plugin implementing a hook nobody declared."""
    while True:
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or plugin_name_of(exc.plugin)
            _unregister(pm, name)
            pm.broken[name] = _one_line(exc)
        else:
            return


def raise_if_broken(pm: CRMPluginManager) -> None:
    """Raise a one-line :class:`PluginError` for the first broken plugin, if any."""
    for name, problem in sorted(pm.broken.items()):
        raise PluginError(
            f"plugin {name!r} is broken ({problem}); fix it, or leave it out with "
            f"{DISABLE_ENV}={name} or `crm --no-plugin {name}`"
        )


def plugin_version(pm: CRMPluginManager, name: str) -> str | None:
    """The version of plugin ``name``: its distribution's, else its ``__version__``."""
    dist = pm.distributions.get(name)
    if dist is not None:
        return str(dist.version)
    version = getattr(pm.get_plugin(name), "__version__", None)
    return None if version is None else str(version)


def plugin_infos(pm: pluggy.PluginManager, *, everything: bool = False) -> list[PluginInfo]:
    """Registered plugins (``everything``: also broken and left-out ones), sorted by name."""
    dists = getattr(pm, "distributions", {})
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(name)
        version = dist.version if dist is not None else getattr(plugin, "__version__", None)
        hooks = tuple(sorted(h.name for h in (pm.get_hookcallers(plugin) or [])))
        infos.append(
            PluginInfo(
                name=name,
                version=str(version) if version is not None else None,
                distribution=dist.metadata["name"] if dist is not None else None,
                hooks=hooks,
            )
        )
    registered = {i.name for i in infos}
    if not everything:
        return sorted(infos, key=lambda i: i.name)
    for name, reason in {**getattr(pm, "skipped", {}), **getattr(pm, "broken", {})}.items():
        if name in registered:
            continue
        broken = name in getattr(pm, "broken", {})
        dist = dists.get(name)
        infos.append(
            PluginInfo(
                name=name,
                version=None if dist is None else str(dist.version),
                distribution=None if dist is None else dist.metadata["name"],
                hooks=(),
                status="broken" if broken else reason,
                problem=reason if broken else None,
            )
        )
    return sorted(infos, key=lambda i: i.name)


def unmet_requirements(pm: CRMPluginManager, core_version: str | None) -> list[str]:
    """One line per requirement a registered plugin declares and nothing satisfies.

    A plugin declares ``crm_requires = ["loyalty>=0.1", "crmcore>=0.1"]``
    (requirement strings in the ``packaging`` syntax; a name is a plugin's,
    or ``crmcore`` for core).
    """
    problems = []
    for name, plugin in sorted(pm.list_name_plugin()):
        declared = getattr(plugin, REQUIRES_ATTRIBUTE, None) if plugin is not None else None
        if not declared:
            continue
        for text in [declared] if isinstance(declared, str) else list(declared):
            try:
                requirement = Requirement(str(text))
            except InvalidRequirement as exc:
                reason = str(exc).splitlines()[0]
                problems.append(
                    f"plugin {name!r} declares an invalid requirement {text!r}: {reason}"
                )
                continue
            wanted = requirement.name
            if wanted == PROJECT_NAME:
                found = core_version
            elif pm.get_plugin(wanted) is not None:
                found = plugin_version(pm, wanted)
            else:
                state = pm.skipped.get(wanted) or ("broken" if wanted in pm.broken else None)
                why = f"it is {state}" if state else "it is not installed"
                problems.append(f"plugin {name!r} requires plugin {wanted!r}, but {why}")
                continue
            if requirement.specifier and not _satisfies(found, requirement):
                problems.append(
                    f"plugin {name!r} requires {str(requirement)!r}, but {wanted} "
                    f"{found or '(no version)'} is installed"
                )
    return problems


def _satisfies(version: str | None, requirement: Requirement) -> bool:
    if version is None:
        return False
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def disabled_plugin_modules(disabled: Iterable[str]) -> list[tuple[str, object]]:
    """Load installed plugins that are not registered, without registering them.

    Only used to find their migration directories, so that revisions they
    applied while enabled remain known to alembic. One that fails to import
    is left out (its revisions are then reported as those of a missing plugin).
    """
    names = set(disabled)
    modules = []
    for ep, _dist in _entry_points():
        if ep.name in names:
            try:
                modules.append((ep.name, ep.load()))
            except Exception:
                continue
    return modules


def installed_plugin_names() -> list[str]:
    """Names of plugins registered through the entry-point group, enabled or not."""
    return sorted(ep.name for ep, _dist in _entry_points())


# --- attribution -------------------------------------------------------------


def failed_plugin(exc: BaseException) -> str | None:
    """The name of the plugin whose hook implementation raised ``exc`` (when known)."""
    name = getattr(exc, _FAILED_PLUGIN, None)
    return name if isinstance(name, str) else None


def _mark(exc: BaseException, name: str) -> None:
    if failed_plugin(exc) is None:
        with contextlib.suppress(AttributeError, TypeError):  # a type without a __dict__
            setattr(exc, _FAILED_PLUGIN, name)


def _attributed(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            try:
                return (yield from function(*args, **kwargs))
            except BaseException as exc:
                _mark(exc, name)
                raise

        return wrapper

    @functools.wraps(function)
    def implementation(*args: Any, **kwargs: Any) -> Any:
        try:
            answer = function(*args, **kwargs)
        except BaseException as exc:
            _mark(exc, name)
            raise
        answers = _answers.get()
        if answers is not None:
            answers.append((name, answer))
        return answer

    return implementation


def attribute_hook(caller: pluggy.HookCaller) -> None:
    """Make each implementation of ``caller`` report its plugin (once per implementation).

    pluggy still calls them in its own loop and order; the wrapped function
    only records the answer (for :func:`answers_by_plugin`) and marks an
    exception with the plugin's name (for :func:`failed_plugin`).
    """
    for impl in caller.get_hookimpls():
        if not getattr(impl.function, _ATTRIBUTED, False):
            impl.function = _attributed(impl.function, impl.plugin_name)  # type: ignore[misc]
            setattr(impl.function, _ATTRIBUTED, True)


def attribute_plugin(pm: pluggy.PluginManager, plugin: object) -> None:
    """Attribute every hook implementation of a registered ``plugin``."""
    for caller in pm.get_hookcallers(plugin) or ():
        attribute_hook(caller)


@contextmanager
def recorded_answers() -> Iterator[list[tuple[str, object]]]:
    """Collect ``(plugin name, answer)`` of every implementation called inside, in call order."""
    answers: list[tuple[str, object]] = []
    token = _answers.set(answers)
    try:
        yield answers
    finally:
        _answers.reset(token)


def answers_by_plugin(
    name: str, answers: list[Any], given: list[tuple[str, object]]
) -> dict[str, Any]:
    """Key the answers of a hook call by the plugin that gave each, in the call's order.

    ``answers`` is the list pluggy returned (wrappers may have filtered it,
    or changed its items in place); ``given`` what :func:`recorded_answers`
    saw. An answer no plugin gave (a wrapper put it in) is a PluginError.
    """
    owners: dict[int, list[str]] = {}
    for plugin, answer in given:
        if answer is not None:
            owners.setdefault(id(answer), []).append(plugin)
    result: dict[str, Any] = {}
    for answer in answers:
        candidates = owners.get(id(answer))
        if not candidates:
            raise PluginError(f"a wrapper of {name} returned an answer no plugin gave: {answer!r}")
        result[candidates.pop(0)] = answer
    return result
