"""Per-filter feature-map norms and the rule that decides which filters are active.

Following Zeiler & Fergus, a filter counts as active for an image when the norm of
its feature map exceeds a threshold computed from that image's norms in the layer.
"""

from numbers import Real

import numpy as np

from service.errors import NotApplicableError

NORMS = ("l2", "l1", "max")
THRESHOLD_RULES = ("mean", "median")


def _as_float(a: np.ndarray) -> np.ndarray:
    """Return `a` as a floating array, promoting integers to float32."""
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)


def feature_map_norms(maps: np.ndarray, norm: str = "l2") -> np.ndarray:
    """Norm of every feature map: (H,W,C) -> (C,), or batched (N,H,W,C) -> (N,C).

    "l2" is the Frobenius norm, "l1" the sum of absolute values, "max" the largest
    absolute value. Reduces over the two spatial axes in one vectorised call.
    """
    a = _as_float(maps)
    if a.ndim not in (3, 4):
        raise ValueError(f"maps must be (H,W,C) or (N,H,W,C), got shape {a.shape}")
    spatial = (-3, -2)
    if norm == "l2":
        return np.sqrt(np.einsum("...hwc,...hwc->...c", a, a))
    if norm == "l1":
        return np.abs(a).sum(axis=spatial)
    if norm == "max":
        return np.abs(a).max(axis=spatial)
    raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


def threshold(norms: np.ndarray, rule: str | float = "mean") -> float | np.ndarray:
    """Activity threshold per image from a layer's norms.

    `rule` is "mean" (the paper's rule), "median", or a fixed number. For norms
    of shape (C,) returns a float; for (N,C) returns an (N,) array, one per image.
    """
    n = _as_float(norms)
    if n.ndim not in (1, 2):
        raise ValueError(f"norms must be (C,) or (N,C), got shape {n.shape}")
    if rule == "mean":
        t = n.mean(axis=-1)
    elif rule == "median":
        t = np.median(n, axis=-1).astype(n.dtype)
    elif isinstance(rule, Real) and not isinstance(rule, (bool, np.bool_)):
        t = np.full(n.shape[:-1], rule, dtype=n.dtype)
    else:
        raise ValueError(f"unknown threshold rule {rule!r}; choose one of {', '.join(THRESHOLD_RULES)} or a number")
    return float(t) if n.ndim == 1 else t


def active_filters(norms: np.ndarray, thresh: float) -> list[int]:
    """Indices of the filters whose norm is strictly above `thresh`, ascending.

    Takes a 1-D norms vector and returns a plain list[int] so it serialises to
    JSON as is; use `active_mask` for batches.
    """
    n = np.asarray(norms)
    if n.ndim != 1:
        raise ValueError(f"norms must be 1-D (C,), got shape {n.shape}; use active_mask for batches")
    return np.flatnonzero(n > thresh).tolist()


def active_mask(norms: np.ndarray, thresh: float | np.ndarray) -> np.ndarray:
    """Boolean (N,C) mask of active filters for a batch of norms.

    `thresh` is a scalar or one threshold per image (N,), so counting active
    filters over a whole dataset is a single comparison.
    """
    return np.asarray(norms) > np.asarray(thresh)[..., None]


# The most maps a picture of a layer shows by default: a layer with more shows its GRID_MAPS most active ones.
GRID_MAPS = 64


class MapCountOutOfRange(NotApplicableError, ValueError):
    """More maps asked for than the layer has, or fewer than one."""


def shown_channels(maps: np.ndarray, top: int | None) -> list[int] | None:
    """The channels of one image's ``maps`` (H, W, C) a picture shows: the ``top`` most active (largest L2 norm,
    most active first; ties in channel order); by default None (all, in channel order) up to GRID_MAPS maps, the
    GRID_MAPS most active of a larger layer, so that layers of hundreds of channels stay legible."""
    count = maps.shape[-1]
    if top is not None and not 1 <= top <= count:
        raise MapCountOutOfRange(f"top must be between 1 and {count} (the layer's maps), got {top}")
    if top is None and count <= GRID_MAPS:
        return None
    norms = feature_map_norms(maps)
    return [int(channel) for channel in np.argsort(-norms, kind="stable")[: top or GRID_MAPS]]
