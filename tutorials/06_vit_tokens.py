# %% [markdown]
# # Inside a small Vision Transformer: tokens, channels, directions
#
# MACO works on transformers too. The objectives read token outputs of shape
# `(N, T, D)` (T tokens of D channels): `Neuron(model, layer, c, position=t)` is channel
# `c` of token `t`, `Channel` averages a channel over all tokens, `Direction` uses vectors
# of length D.
#
# To stay offline and fast, we train a tiny ViT here, on a task whose answer we know: the
# orientation of the bars in 32 x 32 images (horizontal `-`, diagonal `/`, vertical `|`,
# diagonal `\`), with random colours, lengths, widths and positions. Since we know what
# each class *should* look like, we can judge the visualisations. About 2 minutes on 2 CPUs
# (most of it training); `XPLIQUE_MACO_FAST=1` for a quick run.

# %%
import os

# XPLIQUE_MACO_FAST=1 (as in CI): tiny sizes, every code path still runs. 0: the pictures below.
FAST = os.environ.get("XPLIQUE_MACO_FAST", "0") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: fewer C++ logs

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
CLASS_NAMES = ["- horizontal", "/ diagonal", "| vertical", "\\ diagonal"]


# %% [markdown]
# ## The task


# %%
def bars(count, seed, size=32):
    """Images with 2 to 4 bars of one orientation (the label) on a plain noisy background."""
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


# %% [markdown]
# ## The model
#
# Patches of 4 x 4 pixels become 64 tokens of 32 channels (a strided `Conv2D`, reshaped:
# the layer `patch_tokens`), plus a learned position embedding; two pre-norm transformer
# blocks with `keras.layers.MultiHeadAttention`; a final `LayerNormalization` named `tokens`
# whose output `(N, 64, 32)` we visualise; the mean token goes to the `logits`.


# %%
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector to each token position."""

    def build(self, input_shape):
        self.embedding = self.add_weight(
            shape=tuple(input_shape[1:]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="embedding",
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

# %% [markdown]
# ## The logits: one image per class
#
# Each image should contain bars of its class's orientation, and it does: short strokes,
# horizontal, rising, vertical, falling, dark or light, with colours left to chance (colours
# were random in the data, so the model does not care about them). One or two bars are
# enough for the logit; the transparency fades the rest of the canvas, which carries no
# information. The images are small (64 px) because the model's input is 32 px.

# %%
logit_images, logit_masks = maco(Neuron(vit, "logits", [0, 1, 2, 3]), **SETTINGS)
plot_maco_grid(logit_images, logit_masks, titles=CLASS_NAMES, columns=4)
plt.show()
predictions = keras.ops.convert_to_numpy(vit(keras.ops.image.resize(logit_images, (32, 32)))).argmax(axis=1)
print("the model classifies them as:", [CLASS_NAMES[p] for p in predictions])

# %% [markdown]
# ## Tokens: before and after attention
#
# `Neuron(vit, layer, c, position=t)` reads channel `c` of token `t` (tokens are patches in
# reading order: token 0 is the top-left patch, 36 is near the centre, 63 the bottom-right
# one). To tie tokens to places, the crops here cover 90 to 100% of the image, so they barely
# move. Top row, `patch_tokens`: before any attention, a token sees only its own 4 x 4 patch,
# and the transparency lands exactly there. Bottom row, `tokens`: after two attention blocks,
# the same token reads patches all over the image, and its own patch is no longer the one
# that matters most. The faint square grid in the transparency is the patch grid.

# %%
CHANNEL = 5
token_images, token_masks, titles = [], [], []
for layer in ("patch_tokens", "tokens"):
    for position in POSITIONS:
        image, mask = maco(
            Neuron(vit, layer, CHANNEL, position=position), **{**SETTINGS, "crop_size": (0.9, 1.0)}
        )
        token_images.append(image[0])
        token_masks.append(mask[0])
        titles.append(f"{layer}, token {position}")
plot_maco_grid(np.stack(token_images), np.stack(token_masks), titles=titles, columns=len(POSITIONS))
plt.show()

# %% [markdown]
# ## Channels and directions of the token space
#
# `Channel(vit, "tokens", [...])` averages a channel over all 64 tokens: one image per
# channel. For directions we use what the model computes itself: the mean token of the test
# images of each class, minus the mean over classes (a `(4, 32)` array, one direction per
# class). `evaluate` then scores each direction's image on every direction (plain dot product,
# `cossim_power=0`): the diagonal should win.

# %%
token_model = keras.Model(vit.input, vit.get_layer("tokens").output)
test_tokens = keras.ops.convert_to_numpy(token_model(test_images)).mean(axis=1)  # (1000, 32)
class_directions = np.stack([test_tokens[test_labels == label].mean(axis=0) for label in range(4)])
class_directions -= class_directions.mean(axis=0)  # keep what differs between classes

channels = list(
    np.argsort(-np.abs(vit.get_layer("logits").get_weights()[0]).sum(axis=1))[:4]
)  # used most by the logits
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
scores = np.stack(
    [
        evaluate(Direction(vit, "tokens", np.repeat(direction[None], 4, axis=0), cossim_power=0), inputs)
        for direction in class_directions
    ]
)
print("rows: direction, columns: image of direction -, /, |, \\")
print(np.array2string(scores, precision=2, suppress_small=True))

# %% [markdown]
# The channels most used by the logits respond to mixtures: some to a stroke of one
# orientation with a colour edge beside it, others mostly to a colour. Channels of a token
# space are not classes. Directions built from the classes' mean tokens behave like the logits: the
# oriented bars come back, and the score table is largest on its diagonal.
#
# What to keep in mind: this model is tiny and its task is simple, so its visualisations are
# simple too. The same objectives work unchanged on a large pretrained ViT (any Keras model
# whose layer outputs `(N, T, D)`); there, render on a GPU with the library defaults.
