"""Random streams: the one way the library turns a seed into random draws.

A run has one integer ``seed``. Everything random in it (the teacher, the training and test inputs, the network's
initial weights, the data splits, the repetitions of an experiment) comes from a *named stream* of that seed:

>>> streams = Streams(7)
>>> x = streams.rng("train").standard_normal(3)          # NumPy generator of the "train" stream
>>> key = streams.key("network")                          # JAX PRNG key of the "network" stream
>>> teacher_streams = streams.child("teacher")            # a family of streams of its own (anchors, coefficients, ...)
>>> runs = streams.repetitions(3)                         # three independent repetitions of the experiment

Names, not positions, identify streams: adding a stream never changes another, and the same seed gives the same
teacher, inputs and weights in every function and chapter that asks for them by the same name. Streams come from
NumPy's ``SeedSequence`` with the path of names as its spawn key, so streams of one seed are independent, and
so are the repetitions of one seed and the streams of different seeds: sweeping ``seed`` over 0, 1, 2, ... never
reuses a repetition of another seed (with the old convention, repetitions ``seed, seed + 1, ...``, it did).

Every function of :mod:`kdwide` that draws takes a :class:`Streams` (or a NumPy ``Generator`` made by one); no
other module calls ``default_rng`` or ``PRNGKey`` (a test searches ``src/`` for them). Seeds are validated here
only (:func:`check_seed`).
"""

from __future__ import annotations

import zlib
from typing import Any

import jax
import numpy as np

__all__ = ["Streams", "check_seed"]

_NAME, _INDEX = 1, 2  # spawn-key tags: a path element is a name (hashed) or an index (kept), never confused


def check_seed(seed: Any, name: str = "seed") -> int:
    """An integer seed ≥ 0 (not a bool); returns it as ``int``; ``ValueError`` naming ``name`` otherwise.

    Example:
      >>> check_seed(3)
      3
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {seed!r}")
    return int(seed)


def _words(element: str | int) -> tuple[int, int]:
    if isinstance(element, str):
        if not element:
            raise ValueError("stream names must be non-empty strings")
        return _NAME, zlib.crc32(element.encode())
    return _INDEX, check_seed(element, "repetition index")


class Streams:
    """Named, independent random streams of one integer seed.

    Args:
      seed: the run's base seed, an integer ≥ 0.
      path: the names (and repetition indices) that lead from the base seed to this family; ``()`` at the top.
        Use :meth:`child` and :meth:`repetition` rather than passing it.

    Example:
      >>> a, b = Streams(0), Streams(0)
      >>> bool((a.rng("test").random(4) == b.rng("test").random(4)).all())   # same seed, same name: same draws
      True
      >>> bool((a.rng("test").random(4) == a.rng("train").random(4)).any())  # another name: independent draws
      False
      >>> Streams(0).repetition(2).child("teacher")
      Streams(seed=0, path=('repetition', 2, 'teacher'))
    """

    __slots__ = ("seed", "path")

    def __init__(self, seed: int, path: tuple[str | int, ...] = ()) -> None:
        self.seed = check_seed(seed)
        for element in path:
            _words(element)
        self.path = tuple(path)

    def __repr__(self) -> str:
        return f"Streams(seed={self.seed}, path={self.path!r})" if self.path else f"Streams(seed={self.seed})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Streams) and (self.seed, self.path) == (other.seed, other.path)

    def __hash__(self) -> int:
        return hash((self.seed, self.path))

    def sequence(self, name: str) -> np.random.SeedSequence:
        """The ``SeedSequence`` of stream ``name`` (entropy: the seed; spawn key: the path and the name)."""
        key = tuple(word for element in (*self.path, name) for word in _words(element))
        return np.random.SeedSequence(self.seed, spawn_key=key)

    def rng(self, name: str) -> np.random.Generator:
        """A fresh NumPy generator of stream ``name`` (each call starts the stream from its beginning)."""
        if not isinstance(name, str):
            raise ValueError(f"stream name must be a string, got {name!r}")
        return np.random.default_rng(self.sequence(name))

    def integer(self, name: str) -> int:
        """A 32-bit integer seed of stream ``name``, for libraries that take integer seeds (e.g. scikit-learn)."""
        return int(self.sequence(name).generate_state(1)[0])

    def key(self, name: str) -> jax.Array:
        """A JAX PRNG key of stream ``name`` (e.g. a network's initial weights)."""
        return jax.random.PRNGKey(self.integer(name))

    def child(self, name: str) -> Streams:
        """The family of streams ``name`` below this one, e.g. ``streams.child("teacher").rng("anchors")``."""
        if not isinstance(name, str):
            raise ValueError(f"stream name must be a string, got {name!r}")
        return Streams(self.seed, (*self.path, name))

    def repetition(self, index: int) -> Streams:
        """The streams of repetition ``index`` (an integer ≥ 0) of an experiment run with this seed."""
        return Streams(self.seed, (*self.path, "repetition", check_seed(index, "repetition index")))

    def repetitions(self, n_seeds: int) -> list[Streams]:
        """The first ``n_seeds`` repetitions (≥ 1): ``[self.repetition(0), ..., self.repetition(n_seeds - 1)]``."""
        if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
            raise ValueError(f"n_seeds must be an integer >= 1, got {n_seeds!r}")
        return [self.repetition(index) for index in range(int(n_seeds))]

    @property
    def index(self) -> int | None:
        """The repetition index of these streams (the last one on the path), or ``None`` outside repetitions."""
        for first, second in zip(self.path[-2::-1], self.path[::-1]):
            if first == "repetition" and isinstance(second, int):
                return second
        return None

    def record(self) -> dict[str, int]:
        """The fields that name these streams in a results record: ``{"seed": ..., "repetition": ...}``."""
        index = self.index
        return {"seed": self.seed} if index is None else {"seed": self.seed, "repetition": index}
