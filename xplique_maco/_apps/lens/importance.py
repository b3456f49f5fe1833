"""How much each concept drives the class logit: Sobol total indices over the concept coefficients
(CRAFT's estimator), from quasi-random masks passed through the rest of the network.

An image's activation at the layer is rebuilt from its concepts, position by position: A = U W.
A mask m in [0, 1]^K scales the coefficients (A_m = (U * m) W) and the head gives the class logit
f(m). A concept's total index is the share of the variance of f that involves it, alone or with
others; Jansen's estimator reads it from two quasi-random designs A and B of masks and the K
designs C_i (A with column i from B): S_Ti = E[(f(A) - f(C_i))^2] / (2 Var f).
"""

from __future__ import annotations

import keras
import numpy as np


def total_indices(
    head: keras.Model,
    coefficients: np.ndarray,
    vectors: np.ndarray,
    class_index: int,
    nb_designs: int,
    seed: int,
    batch_size: int = 64,
) -> np.ndarray:
    """Each concept's Sobol total index on the class logit, averaged over the images.

    Args:
        head: The rest of the network, from the layer's activation to the logits.
        coefficients: (N, h, w, K) each image's concept coefficients at each position.
        vectors: (K, C) the concepts.
        class_index: The logit explained.
        nb_designs: Masks per design (a power of two suits the Sobol sequence).
        seed: The scrambling of the Sobol sequence.
        batch_size: Masked activations per call of the head.

    Returns:
        (K,) total indices, >= 0.
    """
    masks = sobol_masks(len(vectors), nb_designs, seed)
    indices = np.zeros(len(vectors))
    for image in coefficients:
        logits = masked_logits(head, image, vectors, masks, class_index, batch_size)
        indices += jansen_total(logits, len(vectors), nb_designs)
    return indices / len(coefficients)


def sobol_masks(nb_concepts: int, nb_designs: int, seed: int) -> np.ndarray:
    """The masks A, B, C_1 .. C_K stacked: ((K + 2) * nb_designs, K) in [0, 1]."""
    from scipy.stats import qmc

    points = qmc.Sobol(d=2 * nb_concepts, scramble=True, seed=seed).random(nb_designs)
    first, second = points[:, :nb_concepts], points[:, nb_concepts:]
    mixed = []
    for concept in range(nb_concepts):
        design = first.copy()
        design[:, concept] = second[:, concept]
        mixed.append(design)
    return np.concatenate([first, second, *mixed]).astype(np.float32)


def masked_logits(head, coefficients, vectors, masks, class_index: int, batch_size: int) -> np.ndarray:
    """The class logit of one image's activation rebuilt from its concepts under each mask."""
    logits = []
    for start in range(0, len(masks), batch_size):
        scaled = coefficients[None] * masks[start : start + batch_size, None, None, :]  # (b, h, w, K)
        rebuilt = np.einsum("bhwk,kc->bhwc", scaled, vectors)
        logits.append(np.asarray(head(rebuilt, training=False))[:, class_index])
    return np.concatenate(logits)


def jansen_total(logits: np.ndarray, nb_concepts: int, nb_designs: int) -> np.ndarray:
    """Jansen's estimator of the total indices from the logits of the stacked designs."""
    first, second = logits[:nb_designs], logits[nb_designs : 2 * nb_designs]
    variance = np.var(np.concatenate([first, second]))
    if variance <= 0:
        return np.zeros(nb_concepts)
    mixed = logits[2 * nb_designs :].reshape(nb_concepts, nb_designs)
    return np.mean((first[None] - mixed) ** 2, axis=1) / (2.0 * variance)
