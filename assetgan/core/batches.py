"""Deterministic minibatch schedules shared by the trainers (segmenter, reconstruction)."""

from __future__ import annotations

import numpy as np


def batch_indices(count: int, batch: int, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(image indices [B], flip draws [B] in [0, 1)) of step `step`: a fresh permutation of the
    `count` images per epoch, a pure function of (seed, step), so a resumed run draws the same
    batches. Compare a draw with the flip probability to decide a mirror."""
    steps_per_epoch = max(1, count // batch)
    epoch, position = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(count)
    draws = np.random.default_rng([seed, epoch, 1]).random(count)
    chosen = order[position * batch : (position + 1) * batch]
    return chosen, draws[chosen]
