# %% [markdown]
# # Feature inversion: what a layer keeps of a photo
#
# Instead of maximising one unit, `Inversion(model, layer, photo)` asks for an image whose
# activations at `layer` point the same way as the photo's (cosine similarity over the
# whole feature map). MACO's phase-only parametrisation keeps the result photo-like, so the
# differences between the inversion and the photo are what the layer *throws away*.
#
# The crops cover almost the whole image (`crop_size=(0.9, 1.0)`) and the image is as large
# as the model's input: the layout of a feature map is tied to the image's layout, so we
# cannot look at it through small moving windows. The last section accentuates the photo
# with an ImageNet classifier. About 5 minutes on 2 free CPUs;
# `XPLIQUE_MACO_FAST=1` for a quick run.

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

from xplique_maco import History, Inversion, Neuron, accentuate, maco, plot_maco, zoo

plt.rcParams["figure.dpi"] = 72
set_matplotlib_formats("jpeg", pil_kwargs={"quality": 85})  # keeps the notebook small

SIZE = 64 if FAST else 224  # image side = model input side
STEPS = 6 if FAST else 96
CROPS = 2 if FAST else 4
LAYERS = (
    ["block2_conv2", "block5_conv3"]
    if FAST
    else ["block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]
)

# %%
vgg = zoo.vgg16_conv()
photo = skimage.data.chelsea()[:, 75:375]  # a centred square around the cat's head
photo = keras.ops.convert_to_numpy(keras.ops.image.resize(photo / 255.0, (SIZE, SIZE))).astype("float32")
plt.figure(figsize=(3, 3))
plt.imshow(photo)
plt.axis("off")
plt.title("the photo")
plt.show()

# %% [markdown]
# ## Inverting four depths of VGG16
#
# One call per layer (each layer is its own objective). `History` records the objective:
# the cosine similarity on that step's crops (1 is a perfect match; values of different
# layers are not comparable).

# %%
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

# %%
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

# %% [markdown]
# What to look for, from left to right:
#
# * **block2_conv2** keeps the eyes, the nose, the whiskers and the fur's stripes at their
#   places, with sharp edges.
# * **block3_conv3** is nearly as faithful; the fine fur is replaced by a similar texture.
# * **block4_conv3** still has eyes, nose and ears at about the right places, but doubled
#   and distorted, and the fur becomes a repeated pattern: the layer keeps *what* is
#   there more than exactly *where*.
# * **block5_conv3** has lost the layout: what remains is patches of fur texture, mostly at
#   the top left, where the photo's activations at this layer are strongest (the striped
#   forehead). These weights were tuned for edges, so this deepest layer keeps little else.
#
# The transparency (bottom row) is spread over the whole image for the first three layers
# (every position of the feature map has to match) and gathers at the top left for
# `block5_conv3`, where the target is.
#
# What does not look great: the colours are off at every depth, redder and more contrasted
# than the photo. Part of it is the objective (cosine similarity ignores the overall
# strength of the activations), part is MACO itself (the fixed magnitude sets the image's
# contrast, which cannot drop to the photo's soft beige), and the display stretches the
# contrast a little (`plot_maco(..., contrast=None)` shows raw values). On a GPU, more
# steps (256) and crops (16) make the deeper inversions cleaner.

# %% [markdown]
# ## Feature accentuation: what in this photo drives a class
#
# Inversion keeps a layer's features and lets everything else go. Feature accentuation
# (Hamblin, Fel et al. 2024) turns this around: `accentuate(objective, photo, layer,
# closeness)` starts *at* the photo (its own Fourier phase) and keeps its own Fourier
# magnitude, then climbs `objective + closeness * Inversion(model, layer, photo)`. The unit
# rises while the image stays close to the photo in `layer`'s features, so what changes is
# what this photo would need to drive the unit more.
#
# VGG16 here was tuned for edges, so we ask an ImageNet classifier, EfficientNet-Lite0: the
# cat toward the class the model gives it, and toward "lemon". The weight 100 suits logits,
# which rise by tens (the closeness is at most 1).

# %%
classifier = zoo.efficientnet_lite0()
names = zoo.imagenet_classes()
logits = classifier.predict_on_batch(photo[None])[0]
targets = [int(logits.argmax()), names.index("lemon")]


def softmax(values):
    exponentials = np.exp(values - values.max())
    return exponentials / exponentials.sum()


accentuated, _ = accentuate(
    Neuron(classifier, "predictions", targets),
    photo,
    "block3b_add",
    closeness=100.0,
    nb_steps=4 if FAST else 64,
    nb_crops=CROPS * 2,
    seed=0,
    verbose=0,
)
after = classifier.predict_on_batch(accentuated.numpy())
for row, target in enumerate(targets):
    print(
        f"{names[target]}: logit {logits[target]:.1f} on the photo -> {after[row, target]:.1f}, "
        f"probability {softmax(logits)[target]:.3f} -> {softmax(after[row])[target]:.3f}"
    )

# %%
figure, axes = plt.subplots(1, 3, figsize=(9, 3.3))
axes[0].imshow(photo)
axes[0].set_title("photo")
for column, target in enumerate(targets, start=1):
    plot_maco(accentuated[column - 1], ax=axes[column], title=f"-> {names[target]}", contrast=None)
for axis in axes:
    axis.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# Both images are still plainly the photo, with its own spectrum and mean colour, yet both
# classes end up certain (in the full run: Egyptian Mau from 0.41 to 1.00, logit 9.1 -> 34.2;
# lemon from 0.000 to 0.999, logit 0.5 -> 22.3). Toward its own class, the fur's stripes and
# spots get sharper and more contrasted where they already were; toward "lemon", faint
# yellowish, rounded textures spread over the cheeks and the forehead while the eyes, the nose
# and the whiskers stay in place (`block3b_add` holds that layout). The page "Feature
# accentuation" of the documentation shows more photos and classes.
