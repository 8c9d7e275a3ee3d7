"""The hand-built k-reciprocal example shared by the re-ranking tests (maths and search loop).

The query sits at 0 degrees. Its true match T (-29) is farther than a tight crowd of
look-alikes around F (20 .. 37), but the query is among T's nearest neighbours, while
every look-alike has at least k1 crowd members nearer to it than the query.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def on_circle(*degrees: float) -> F32:
    """Unit vectors at these angles in a plane: cosine distance grows with the angle."""
    rad = np.radians(np.array(degrees, np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


QUERY = 0.0
TRUE = -29.0
CROWD = (20.0, 22.0, 24.0, 26.0, 31.0, 33.0, 35.0, 37.0)
OTHER = -60.0  # a stranger beyond T, so T's neighbours are not all crowd
GALLERY = (*CROWD[:4], TRUE, *CROWD[4:], OTHER)
T_ROW = GALLERY.index(TRUE)
F_ROW = GALLERY.index(20.0)
K1 = 5
