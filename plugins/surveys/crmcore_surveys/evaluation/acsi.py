"""The ACSI model: its latent variables, paths, and the 0-100 indices (pure numpy).

The American Customer Satisfaction Index model (Fornell et al., 1996):
customer expectations, perceived quality and perceived value drive satisfaction,
which drives complaints and loyalty (complaints also drive loyalty)::

    expectations -> quality, value, satisfaction
    quality      -> value, satisfaction
    value        -> satisfaction
    satisfaction -> complaints, loyalty
    complaints   -> loyalty

A survey's questions are mapped to these latent variables by their ``dimension``
(:data:`ALIASES`: ``perceived quality`` is ``quality`` ...), or explicitly. Only the
latent variables that have questions are estimated, with the paths among them.

The index of a latent variable, as ACSI reports it: with the standardised outer
weights ``w_h`` and the indicators' SDs ``s_h``, the unstandardised weights
``u_h = w_h / s_h`` rescaled to sum 1, ``v_h = u_h / sum_k u_k`` (these do not depend on
whether the SDs divide by n or n - 1); then
``index = 100 (sum_h v_h mean_h - sum_h v_h min_h) / (sum_h v_h max_h - sum_h v_h min_h)``
with ``min_h``/``max_h`` the ends of question ``h``'s scale. On 1-10 scales that is
``100 (sum_h v_h mean_h - 1) / 9``. A respondent's score is the same with the answers
in place of the means; the index is the mean of the respondents' scores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from crmcore.errors import ValidationError

Array = NDArray[np.float64]

#: The latent variables in model order (each after every one with a path into it).
LATENT = ("expectations", "quality", "value", "satisfaction", "complaints", "loyalty")

#: The ACSI paths (source, target).
EDGES: tuple[tuple[str, str], ...] = (
    ("expectations", "quality"),
    ("expectations", "value"),
    ("expectations", "satisfaction"),
    ("quality", "value"),
    ("quality", "satisfaction"),
    ("value", "satisfaction"),
    ("satisfaction", "complaints"),
    ("satisfaction", "loyalty"),
    ("complaints", "loyalty"),
)

#: Dimension names (lower case, single spaces) that name each latent variable.
ALIASES: Mapping[str, str] = {
    alias: latent
    for latent, names in (
        ("expectations", ("expectations", "expectation", "customer expectations")),
        ("quality", ("quality", "perceived quality")),
        ("value", ("value", "perceived value")),
        ("satisfaction", ("satisfaction", "customer satisfaction", "acsi")),
        ("complaints", ("complaints", "complaint", "customer complaints")),
        ("loyalty", ("loyalty", "customer loyalty")),
    )
    for alias in names
}


def latent_of(dimension: str | None) -> str | None:
    """The latent variable a dimension name maps to (:data:`ALIASES`), or ``None``."""
    if dimension is None:
        return None
    return ALIASES.get(re.sub(r"\s+", " ", dimension.strip().lower()))


def model_edges(present: Sequence[str]) -> list[tuple[str, str]]:
    """The ACSI paths between the latent variables present.

    Raises ValidationError without satisfaction or when a present latent variable
    would have no path.
    """
    if "satisfaction" not in present:
        raise ValidationError(
            "mapping: the ACSI model needs questions for 'satisfaction'", field="mapping"
        )
    edges = [(s, t) for s, t in EDGES if s in present and t in present]
    for name in present:
        if not any(name in edge for edge in edges):
            raise ValidationError(
                f"mapping: {name!r} has no path to the other latent variables present "
                f"({', '.join(present)})",
                field="mapping",
            )
    return edges


def rescaled_weights(weights: Array, sds: Array) -> Array:
    """``v_h = (w_h / s_h) / sum_k (w_k / s_k)`` over one block's indicators."""
    unstandardised = np.asarray(weights, dtype=np.float64) / np.asarray(sds, dtype=np.float64)
    total = unstandardised.sum()
    if abs(total) <= 1e-15:
        raise ValidationError("acsi: a block's unstandardised weights sum to 0", field="responses")
    result: Array = unstandardised / total
    return result


def index(v: Array, values: Array, low: Array, high: Array) -> Array:
    """``100 (v.x - v.min) / (v.max - v.min)`` of each row of ``values`` (or of a vector)."""
    v = np.asarray(v, dtype=np.float64)
    bottom = float(v @ np.asarray(low, dtype=np.float64))
    top = float(v @ np.asarray(high, dtype=np.float64))
    result: Array = 100.0 * (np.asarray(values, dtype=np.float64) @ v - bottom) / (top - bottom)
    return result
