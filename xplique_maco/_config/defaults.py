"""Every default of the library, written once; signatures, the command line, the atlas and the
benchmarks read them from here (no TensorFlow, so `xplique-maco --help` answers at once)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RenderDefaults:
    """The defaults of one rendering function's settings (see `maco` for what each means).

    As written here, MACO's: phases only, many small crops (30 to 100% of the side) that wrap
    around the periodic image, a quarter of them glances, Nadam from 1 to 0.1 radians on a half
    cosine. How these were chosen: the documentation's metrics page ("How the defaults were
    chosen"). The other functions replace some of them.
    """

    nb_steps: int = 128
    image_shape: tuple[int, int] | None = (512, 512)  # None: the photos' size (accentuation)
    nb_crops: int = 8
    crop_size: float | tuple[float, float] = (0.3, 1.0)
    wrap_crops: bool | None = None
    antialias: bool = True
    noise: float = 0.05
    optimizer: str = "nadam"
    learning_rate: float | tuple[float, float] = (1.0, 0.1)
    values_range: tuple[float, float] = (0.0, 1.0)
    glance: float = 0.25


MACO = RenderDefaults()

# The Fourier (Lucid) baseline as Lucid runs it: Adam at 0.05, large crops kept inside the image
# (its jitter and scaling), no noise, no antialiasing, no glances.
FOURIER = replace(
    MACO,
    nb_steps=256,
    nb_crops=32,
    crop_size=(0.85, 1.0),
    wrap_crops=False,
    antialias=False,
    noise=0.0,
    optimizer="adam",
    learning_rate=0.05,
    glance=0.0,
)

# Feature accentuation starts from a photo's phase: small steps, crops that cover almost the
# whole photo (the closeness compares positions one by one), little noise; never wrapped (a
# photo is not periodic), no glances. The image shape is the photos'.
ACCENTUATE = replace(
    MACO,
    nb_steps=64,
    image_shape=None,
    crop_size=(0.9, 1.0),
    wrap_crops=False,
    noise=0.02,
    learning_rate=(0.1, 0.01),
    glance=0.0,
)
# Weight of the closeness term of `accentuate`.
CLOSENESS = 100.0

# Crops are resized to this side when the model accepts any input size.
INPUT_SIZE = 224


@dataclass(frozen=True)
class AtlasDefaults:
    """The defaults of `render_atlas` and of the command line's `render`."""

    kind: str = "neuron"
    batch_size: int = 8
    seed: int = 0
    nb_examples: int = 6  # dataset examples per unit, from the user's images
    examples_per_image: int = 8  # random crops of each image to find them in


ATLAS = AtlasDefaults()


@dataclass(frozen=True)
class DemoDefaults:
    """The defaults of `xplique-maco demo`: a few classes at a small size, answered in minutes on a CPU."""

    classes: tuple[str, ...] = ("espresso", "goldfish", "flamingo", "lemon", "jellyfish", "volcano")
    image_size: int = 256
    model_input_size: tuple[int, int] = (224, 224)


DEMO = DemoDefaults()


@dataclass(frozen=True)
class LensDefaults:
    """The defaults of `lens` and of the command line's `lens`: CRAFT's recipe at a size that
    renders ten concepts per class in minutes on a CPU."""

    nb_concepts: int = 10
    crops_per_image: int = 16
    crop_size: tuple[float, float] = (0.25, 0.5)
    top_crops: int = 8
    nb_designs: int = 32
    classes_per_render: int = 4
    image_shape: tuple[int, int] = (256, 256)
    batch_size: int = 32
    seed: int = 0


LENS = LensDefaults()
