# %% [markdown]
# # Concepts: directions found in real photos, then visualised
#
# A single channel is rarely a human concept. In the spirit of CRAFT (Fel et al., 2023), we
# let the data propose the directions instead:
#
# 1. cut many random crops from a few real photos,
# 2. read a layer's activations on each crop (EfficientNet-Lite0's last convolution,
#    `top_activation`, averaged over positions: 1280 non-negative numbers per crop),
# 3. factorise the activation matrix `A ≈ U W` with non-negative matrix factorisation
#    (NMF): each row of `W` is a *concept*, a direction in the layer's channel space, and
#    `U` says how much of each concept each crop holds,
# 4. show each concept twice: the crops that hold most of it, and `maco(Direction(...))`,
#    the image that best points along it.
#
# About 3 minutes on 2 CPUs; `XPLIQUE_MACO_FAST=1` for a quick run.

# %%
import os

# XPLIQUE_MACO_FAST=1 (as in CI): tiny sizes, every code path still runs. 0: the pictures below.
FAST = os.environ.get("XPLIQUE_MACO_FAST", "0") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: fewer C++ logs

import keras
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
from matplotlib_inline.backend_inline import set_matplotlib_formats
from sklearn.decomposition import NMF

from xplique_maco import Direction, maco, plot_maco, zoo

plt.rcParams["figure.dpi"] = 72
set_matplotlib_formats("jpeg", pil_kwargs={"quality": 85})  # keeps the notebook small

CROPS_PER_PHOTO = 2 if FAST else 24
CONCEPTS = 2 if FAST else 6
SETTINGS = dict(
    image_shape=(64, 64) if FAST else (224, 224),
    model_input_size=(96, 96) if FAST else (224, 224),
    nb_steps=6 if FAST else 128,
    nb_crops=2 if FAST else 8,
    seed=0,
    verbose=0,
)
LAYER = "top_activation"

# %% [markdown]
# ## Crops of real photos
#
# Five photos that ship with scikit-image. Each crop is a random square of 35 to 60% of the
# photo's shorter side, resized to 224 px: small enough to isolate parts (an ear, a cup's
# rim, a face), large enough to be recognised.

# %%
PHOTOS = {
    "cat": skimage.data.chelsea(),
    "coffee": skimage.data.coffee(),
    "astronaut": skimage.data.astronaut(),
    "rocket": skimage.data.rocket(),
    "motorcycle": skimage.data.stereo_motorcycle()[0],
}
rng = np.random.default_rng(0)
crops, sources = [], []
for name, photo in PHOTOS.items():
    photo = photo.astype("float32") / 255.0
    height, width = photo.shape[:2]
    for _ in range(CROPS_PER_PHOTO):
        side = int(rng.uniform(0.35, 0.6) * min(height, width))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        crop = photo[top : top + side, left : left + side]
        crops.append(keras.ops.convert_to_numpy(keras.ops.image.resize(crop, (224, 224))))
        sources.append(name)
crops, sources = np.stack(crops), np.array(sources)
print(crops.shape)

figure, axes = plt.subplots(1, 5, figsize=(12, 2.6))
for axis, name in zip(axes, PHOTOS):
    axis.imshow(crops[np.flatnonzero(sources == name)[0]])
    axis.set_title(f"a crop of '{name}'")
    axis.axis("off")
plt.show()

# %% [markdown]
# ## Activations and NMF
#
# `top_activation` is a ReLU6, so activations are non-negative, as NMF needs. Averaging
# over positions gives one vector per crop; NMF splits the `(crops, 1280)` matrix into
# `U (crops, k)` and `W (k, 1280)`.

# %%
model = zoo.efficientnet_lite0()
features = keras.Model(model.input, model.get_layer(LAYER).output)
activations = np.concatenate(
    [
        keras.ops.convert_to_numpy(features(crops[start : start + 32])).mean(axis=(1, 2))
        for start in range(0, len(crops), 32)
    ]
)
print("activations", activations.shape, "min", activations.min())

nmf = NMF(n_components=CONCEPTS, init="nndsvda", max_iter=1000, random_state=0)
presence = nmf.fit_transform(activations)  # U: how much of each concept each crop holds
concepts = nmf.components_  # W: one direction per row, in the 1280 channels of the layer
error = np.linalg.norm(activations - presence @ concepts) / np.linalg.norm(activations)
print("concepts", concepts.shape, f"relative reconstruction error {error:.2f}")

# %% [markdown]
# Which photo does each concept come from? The average presence of each concept in the
# crops of each photo (each column scaled to its maximum). Here every concept belongs to one
# photo, and coffee has two.

# %%
table = np.stack([presence[sources == name].mean(axis=0) for name in PHOTOS])
table = table / table.max(axis=0, keepdims=True)
figure, axis = plt.subplots(figsize=(1.0 + 0.7 * CONCEPTS, 3))
axis.imshow(table, cmap="Blues", vmin=0, vmax=1)
axis.set_yticks(range(len(PHOTOS)), list(PHOTOS))
axis.set_xticks(range(CONCEPTS), [f"concept {k}" for k in range(CONCEPTS)], rotation=45)
axis.set_title("presence per photo (column-normalised)")
plt.show()

# %% [markdown]
# ## Each concept, visualised
#
# `Direction(model, LAYER, concepts)` with the `(k, 1280)` matrix is a batch: one image per
# concept, in one call. At every position of the layer the objective is the dot product with
# the concept times the squared cosine similarity, so the image is pushed to contain *that*
# mixture of channels and little else.

# %%
concept_images, concept_masks = maco(Direction(model, LAYER, concepts), **SETTINGS)


def block(k):
    """Layout of one concept: its 4 top crops in a 2 x 2 grid, then its MACO image twice as large."""
    if k >= CONCEPTS:
        return [["."] * 4] * 2
    return [
        [f"crop{k}_0", f"crop{k}_1", f"maco{k}", f"maco{k}"],
        [f"crop{k}_2", f"crop{k}_3", f"maco{k}", f"maco{k}"],
    ]


layout = []
for k in range(0, CONCEPTS, 2):  # two concepts side by side
    layout += [left + ["."] + right for left, right in zip(block(k), block(k + 1))]
figure, axes = plt.subplot_mosaic(
    layout, figsize=(12, 1.5 * len(layout)), empty_sentinel=".", width_ratios=[1, 1, 1, 1, 0.25, 1, 1, 1, 1]
)
for k in range(CONCEPTS):
    for rank, index in enumerate(np.argsort(-presence[:, k])[:4]):
        axis = axes[f"crop{k}_{rank}"]
        axis.imshow(crops[index])
        axis.set_title(sources[index], fontsize=8)
        axis.axis("off")
    plot_maco(concept_images[k], concept_masks[k], ax=axes[f"maco{k}"], title=f"concept {k}")
plt.show()

# %% [markdown]
# How to read a concept: the four crops are the evidence (where the concept is found in real
# data), the larger image is the model's own picture of it, with the transparency keeping
# the parts it cared about. With five very different photos, most concepts are one photo's
# main subject, and most pictures agree with the crops: a cat's eye with its pupil, the thin
# lattice of the launch tower, a dark shiny spoon, the ring of crema in a cup, a small red
# and metallic motorcycle part. The coffee photo splits into two concepts (spoon, cup). The
# astronaut's concept is the least readable (a small orange and green patch: faces are hard
# for this model at this budget). The objects are small compared with the canvas: the
# transparency says the model needs one of them, not a canvas full.
#
# When pictures and crops disagree, trust the crops: a visualisation can show a shortcut
# the model takes, and NMF on few crops also merges things that merely appear together. For
# concepts *within* a class (ears, fur, whiskers for "cat"), factorise crops of many photos
# of that class, as CRAFT does; a concept's importance for a class can then be measured by
# removing it (`A - U[:, k:k+1] W[k]`) and watching the logit.
