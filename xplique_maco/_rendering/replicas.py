"""A chunk's items across the replicas of a `tf.distribute.Strategy`: split, placed and gathered."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def split(items: np.ndarray, replicas: int, group: int = 1) -> list[np.ndarray]:
    """Contiguous parts of whole groups of `group` items, one part per replica; fewer groups than
    replicas are padded with copies of the last group (their results are dropped), since every
    replica must run."""
    if replicas == 1:
        return [items]
    groups = items.reshape(-1, group)
    padded = np.concatenate([groups, np.repeat(groups[-1:], max(0, replicas - len(groups)), axis=0)])
    return [part.reshape(-1) for part in np.array_split(padded, replicas)]


def per_replica(strategy: tf.distribute.Strategy, values: list):
    """One value per replica, placed on that replica's device."""
    return strategy.experimental_distribute_values_from_function(
        lambda context: values[context.replica_id_in_sync_group]
    )


@tf.function
def gathered(strategy: tf.distribute.Strategy, per_replica) -> tf.Tensor:
    """The parts of all replicas of all workers, concatenated along the batch, on every worker.

    Compiled (once per strategy and shapes): eager `strategy.gather` retraces at every call.
    """
    return strategy.gather(per_replica, axis=0)
