# %% [markdown]
# # Neurons, channels, layers, directions, and their sums, inside VGG16
#
# Classes are only the last layer. Here we look inside the 13 convolutions of VGG16
# (`zoo.vgg16_conv()`: ImageNet VGG16 convolutions, fine-tuned on edge detection by HED, so
# the deepest block leans towards contours). The objectives:
#
# | objective | maximises | one image per |
# |---|---|---|
# | `Neuron(model, layer, c)` | channel `c` at one position (the centre of each crop) | index |
# | `Channel(model, layer, c)` | channel `c` averaged over all positions | index |
# | `Layer(model, layer)` | the mean squared activation of the whole layer (DeepDream) | call |
# | `Direction(model, layer, v)` | the activation along a vector `v` of the layer's channel space | row of `v` |
#
# and `+`, `-`, scalar `*` and `/` combine them into one objective (one image). VGG16 is
# heavy for a CPU: crops enter the model at 128 px, and each render takes 15 to 40 seconds
# here (3 to 5 minutes in all). `XPLIQUE_MACO_FAST=1` runs it in under a minute.

# %%
import os

# XPLIQUE_MACO_FAST=1 (as in CI): tiny sizes, every code path still runs. 0: the pictures below.
FAST = os.environ.get("XPLIQUE_MACO_FAST", "0") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: fewer C++ logs

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
DEPTHS = (
    ["block2_conv2", "block5_conv3"]
    if FAST
    else ["block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]
)

# %%
vgg = zoo.vgg16_conv()
print([layer.name for layer in vgg.layers if "conv" in layer.name])


def square(photo, size=224):
    """The centred square of a photo, as RGB in [0, 1] at size x size."""
    height, width = photo.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return keras.ops.convert_to_numpy(
        keras.ops.image.resize(photo[top : top + side, left : left + side] / 255.0, (size, size))
    )


photos = np.stack([square(skimage.data.chelsea()), square(skimage.data.coffee())]).astype("float32")

# %% [markdown]
# ## Channels: one image per index
#
# A list of channel indices is a batch. Each channel of `block4_conv3` responds to a texture
# or a part (dots on a pale surface, a reddish fibrous texture, a horizontal band, round
# blobs): the images fill the canvas with it, and the transparency keeps the places where
# it is strongest.

# %%
channel_images, channel_masks = maco(Channel(vgg, LAYER, CHANNELS), **SETTINGS)
plot_maco_grid(channel_images, channel_masks, titles=[f"Channel({LAYER}, {c})" for c in CHANNELS], columns=4)
plt.show()

# %% [markdown]
# ## Neuron against channel
#
# `Neuron` asks for the channel at a single position (the centre of each crop), so the motif
# only needs to appear once per crop: it comes out as one object in the middle, with a
# concentrated transparency, instead of a texture spread over the canvas.

# %%
neuron_images, neuron_masks = maco(Neuron(vgg, LAYER, CHANNELS[0]), **SETTINGS)
plot_maco_grid(
    np.concatenate([channel_images[:1], neuron_images]),
    np.concatenate([channel_masks[:1], neuron_masks]),
    titles=[f"Channel({LAYER}, {CHANNELS[0]})", f"Neuron({LAYER}, {CHANNELS[0]})"],
    columns=2,
)
plt.show()

# %% [markdown]
# ## Depth
#
# One channel per block: the channel with the largest mean activation on the two photos
# below (a channel that is zero on the starting image has a zero gradient, and MACO leaves
# its image blank). Here `block2_conv2` wants flat patches of colour with finely edged
# borders, `block3_conv3` regular grids of dots, `block4_conv3` dots and rounder shapes.
# `block5_conv3` is busy and hard to read at this budget: its weights were tuned for edges,
# and the deepest layers need more steps and crops.

# %%
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

# %% [markdown]
# ## Layer: everything at once
#
# `Layer` maximises the energy of the whole layer, like DeepDream: whatever the layer
# responds to most strongly, here a few large rounded shapes covered with dots.

# %%
layer_images, layer_masks = maco(Layer(vgg, LAYER), **SETTINGS)
plot_maco_grid(layer_images, layer_masks, titles=[f"Layer({LAYER})"], columns=1, size=3.5)
plt.show()

# %% [markdown]
# ## Directions: what the layer sees at one place of a photo
#
# A direction is any vector of the layer's channel space. Here, the activation vector of
# `block4_conv3` at a cat's eye and at a spoon (averaged over the boxes drawn on the photos;
# the layer has a stride of 8, so a 224 px photo gives a 28 x 28 map). `Direction` rewards
# activations pointing the same way (the dot product times the squared cosine similarity),
# so each image is filled with what that place of the photo looks like to the layer.
# A 2-D array of directions is a batch: one image per row.

# %%
features = keras.Model(vgg.input, vgg.get_layer(LAYER).output)
maps = keras.ops.convert_to_numpy(features(photos))  # (2, 28, 28, 512)
REGIONS = {"cat's eye": (0, 9, 13, 6, 11), "spoon": (1, 19, 23, 16, 21)}  # photo, rows, columns (map cells)
directions = np.stack(
    [maps[i, top:bottom, left:right].mean(axis=(0, 1)) for i, top, bottom, left, right in REGIONS.values()]
)
direction_images, direction_masks = maco(Direction(vgg, LAYER, directions), **SETTINGS)

figure, axes = plt.subplots(1, 4, figsize=(12, 3.3))
for column, (name, (i, top, bottom, left, right)) in enumerate(REGIONS.items()):
    axes[2 * column].imshow(photos[i])
    axes[2 * column].add_patch(
        Rectangle(
            (8 * left, 8 * top), 8 * (right - left), 8 * (bottom - top), fill=False, color="yellow", lw=2
        )
    )
    axes[2 * column].set_title(f"photo: {name}")
    axes[2 * column].axis("off")
    plot_maco(
        direction_images[column], direction_masks[column], ax=axes[2 * column + 1], title=f"Direction: {name}"
    )
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Sums: several objectives, one image
#
# `a + b` asks for both at once in a single image; `a - b` asks for `a` while avoiding `b`.
# Channels live on different scales, so a plain sum is dominated by the larger one: divide
# each term by the value it reaches alone (measured with `evaluate` on its own image, without
# crops) to give them equal weight. Terms on different layers mix freely too, e.g.
# `Channel(vgg, "block4_conv3", 12) + 0.5 * Layer(vgg, "block3_conv3")`: all layers are read
# in one model pass.

# %%
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
for name, index, scale in (
    (f"a (channel {first})", first, alone[0]),
    (f"b (channel {second})", second, alone[1]),
):
    values = evaluate(Channel(vgg, LAYER, [index] * len(rendered)), inputs) / scale
    print(f"{name:>16}:", "  ".join(f"{value:5.2f}" for value in values), "   on images a, b, a + b, a - b")

# %% [markdown]
# Reading the table (each channel relative to its value on its own image): the `a - b`
# image keeps `a`'s dots, drops `b`'s red texture (b is at 0) and even raises `a`. Equal
# weights do not guarantee a balanced result, though: the `a + b` image is mostly `b`, with
# only a fifth of `a`, because raising `b` was easier for the optimisation. Tune the weights
# (e.g. `3 * a + b`) until both show. Sums are how you ask for combinations: a texture
# *and* a colour, a part *without* its background.
#
# What does not look great here: with 64 steps and 4 crops of 128 px, deep-layer images are
# still busy and low in contrast. On a GPU, try `nb_steps=256, nb_crops=16,
# model_input_size=(224, 224), image_shape=(512, 512)`.
