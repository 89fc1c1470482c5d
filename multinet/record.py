"""Record classes without `dataclasses`: what thin mode's per-call path types its records with.

`@record()` / `@record(frozen=True)` gives a class with annotated fields what `@dataclass`
gives the records multinet uses: `__init__` (positional or keyword, defaults and
`field(default_factory=...)`), `__eq__`, `__repr__`, `__hash__` when frozen, assignment
refused when frozen (`FrozenInstanceError`, an AttributeError like dataclasses'), and
`replace`/`fields`. It costs nothing to create a class: no method is compiled from source,
where `dataclasses` imports `inspect` and `ast` and compiles every class's methods at import
(~40 + ~4 million instructions each, paid by every thin-mode call: docs/performance.md).
mypy types the classes as dataclasses (`dataclass_transform`).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_: object) -> object:
        return lambda f: f


_FIELDS = "__record_fields__"


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class _Field:
    __slots__ = ("compare", "default", "make")

    def __init__(self, default: object, make: Callable[[], object] | None, compare: bool) -> None:
        self.default = default
        self.make = make
        self.compare = compare


def field(
    *,
    default: Any = _FIELDS,
    default_factory: Callable[[], Any] | None = None,
    compare: bool = True,
) -> Any:
    """A field with a default made afresh for each instance (a list, a dict), or left out
    of `==` and `hash` (compare=False)."""
    return _Field(default, default_factory, compare)


@dataclass_transform(field_specifiers=(field,))
def record(*, frozen: bool = False) -> Callable[[type[T]], type[T]]:
    """The class decorator: see the module's docstring."""

    def make(cls: type[T]) -> type[T]:
        return _build(cls, frozen)

    return make


def fields(obj: object) -> tuple[str, ...]:
    """The field names of a record class or instance, in order."""
    names: tuple[str, ...] = getattr(obj, _FIELDS)
    return names


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of the record `obj` with some fields changed."""
    values = {name: getattr(obj, name) for name in fields(obj)}
    for name in changes:
        if name not in values:
            raise TypeError(f"{type(obj).__name__} has no field {name!r}")
    values.update(changes)
    return type(obj)(**values)


def _build(cls: type[T], frozen: bool) -> type[T]:
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063  # inspect: ~10M instructions
    inherited: tuple[str, ...] = getattr(cls, _FIELDS, ())
    names = inherited + tuple(
        n for n, t in own.items() if n not in inherited and not str(t).startswith("ClassVar")
    )
    defaults: dict[str, object] = {}
    factories: dict[str, Callable[[], object]] = {}
    for base in reversed(cls.__mro__[1:]):
        defaults.update(getattr(base, "__record_defaults__", {}))
        factories.update(getattr(base, "__record_factories__", {}))
    compared = getattr(cls, "__record_compared__", set(names))
    for name in names:
        value = cls.__dict__.get(name, _FIELDS)
        if isinstance(value, _Field):
            if not value.compare:
                compared = compared - {name}
            if value.make is not None:
                factories[name] = value.make
                defaults.pop(name, None)
            elif value.default is not _FIELDS:
                defaults[name] = value.default
                factories.pop(name, None)
            delattr(cls, name)
        elif value is not _FIELDS:
            defaults[name] = value
            factories.pop(name, None)
    setter = object.__setattr__
    post_init = getattr(cls, "__post_init__", None)

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} positional arguments")
        for name, value in zip(names, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for {name!r}")
            setter(self, name, value)
        for name in names[len(args) :]:
            if name in kwargs:
                setter(self, name, kwargs.pop(name))
            elif name in defaults:
                setter(self, name, defaults[name])
            elif name in factories:
                setter(self, name, factories[name]())
            else:
                raise TypeError(f"{cls.__name__}() missing required argument {name!r}")
        if kwargs:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword {next(iter(kwargs))!r}")
        if post_init is not None:
            post_init(self)

    keys = tuple(name for name in names if name in compared)

    def values(self: object) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in keys)

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return values(self) == values(other)

    def __repr__(self: object) -> str:
        inside = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{cls.__qualname__}({inside})"

    cls.__init__ = __init__  # type: ignore[method-assign]
    cls.__eq__ = __eq__  # type: ignore[method-assign]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = __repr__  # type: ignore[method-assign]
    setattr(cls, _FIELDS, names)
    setattr(cls, "__record_defaults__", defaults)  # noqa: B010
    setattr(cls, "__record_factories__", factories)  # noqa: B010
    setattr(cls, "__record_compared__", compared)  # noqa: B010
    if frozen:

        def __hash__(self: object) -> int:
            return hash(values(self))

        def __setattr__(self: object, name: str, value: object) -> None:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self: object, name: str) -> None:
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        cls.__hash__ = __hash__  # type: ignore[method-assign]
        cls.__setattr__ = __setattr__  # type: ignore[method-assign]
        cls.__delattr__ = __delattr__  # type: ignore[method-assign]
    elif "__hash__" not in cls.__dict__:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared: unhashable
    return cls


class _TupleMeta(type):
    """typing.NamedTuple's class syntax over collections.namedtuple, without `typing`."""

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> type:
        if not bases:
            return super().__new__(mcls, name, bases, ns)
        import collections

        names = list(ns.get("__annotations__", {}))
        defaults = [ns[n] for n in names if n in ns]
        cls = collections.namedtuple(name, names, defaults=defaults, module=ns["__module__"])  # type: ignore[misc]
        for key, value in ns.items():
            if key not in names and key not in _TUPLE_OWN:
                setattr(cls, key, value)
        return cls


_TUPLE_OWN = {"__module__", "__qualname__", "__annotations__", "__dict__", "__weakref__"}


class NamedTuple(metaclass=_TupleMeta):
    """Imported instead of typing.NamedTuple at run time (`if TYPE_CHECKING: ... else:`):
    the same class, ~12 million instructions of `typing` less on every thin-mode call."""
