# %% [markdown]
# # Attribution and feature visualisation, side by side
#
# Two questions about the same prediction:
#
# * **Attribution** ("where in *this* photo?"): which pixels of the photo the predicted
#   logit is most sensitive to. Local: one explanation per photo.
# * **Feature visualisation** ("what is this class *in general* for the model?"): MACO's
#   image for the predicted class, with its transparency. Global: the same image whatever
#   the photo.
#
# If [Xplique](https://github.com/deel-ai/xplique) is installed, its `Saliency` explainer
# is used; otherwise a few lines of `tf.GradientTape` compute SmoothGrad (gradients averaged
# over noisy copies of the photo). About 1.5 minutes on 2 CPUs; `XPLIQUE_MACO_FAST=1` for a
# quick run.

# %%
import os

# XPLIQUE_MACO_FAST=1 (as in CI): tiny sizes, every code path still runs. 0: the pictures below.
FAST = os.environ.get("XPLIQUE_MACO_FAST", "0") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: fewer C++ logs

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

# %%
model = zoo.efficientnet_lite0()
classes = zoo.imagenet_classes()


def square(photo, size=224):
    height, width = photo.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return keras.ops.convert_to_numpy(
        keras.ops.image.resize(photo[top : top + side, left : left + side] / 255.0, (size, size))
    )


photos = np.stack([square(getattr(skimage.data, name)()) for name in PHOTO_NAMES]).astype("float32")
logits = keras.ops.convert_to_numpy(model(photos))
predicted = logits.argmax(axis=1)
for name, row in zip(PHOTO_NAMES, logits):
    top = np.argsort(-row)[:3]
    print(f"{name:>8}: " + ", ".join(f"{classes[i]} ({i})" for i in top))

# %% [markdown]
# ## The attribution map

# %%
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

# %% [markdown]
# ## MACO of the predicted classes
#
# One call for all photos: `Neuron(model, "predictions", predicted)` makes one image per
# predicted class.

# %%
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

# %% [markdown]
# Reading a row: the attribution map lights up the pixels of this photo that the logit
# depends on (the cat's eyes and nose, the cup's rim and the crema, the tip of the rocket),
# while MACO shows what the model wants to see for the class anywhere: a spotted cat's face
# with one eye, a cup rim with bubbles, white missiles standing against a pale sky. The two
# agree on the parts (eyes, rims, pointed tips), which is reassuring. The MACO transparency
# is a map of the visualisation, not of the photo: the two maps answer different questions
# and should not be compared pixel by pixel.
#
# Honest caveats: gradient attributions are noisy, and the fine grid over the map comes from
# the model's strided convolutions (more SmoothGrad samples soften it); a MACO image is one
# sample among many: another `seed` gives another image of the same class.
