"""Users' image folders: class folders named by index or label, messy files converted, skipped or refused."""

import warnings

import numpy as np
import pytest
from PIL import Image

from xplique_maco._config.image_folders import Summary, class_index, folder_classes

LABELS = ["goldfish", "tabby", "espresso"]


def write(path, mode="RGB", size=(12, 10), colour=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = colour if colour is not None else {"RGB": (200, 30, 30), "L": 90, "CMYK": (0, 200, 200, 0)}[mode]
    Image.new(mode, size, colour).save(path)
    return path


def test_folders_are_classes_by_index_or_label_in_the_order_of_their_indices(tmp_path):
    write(tmp_path / "espresso" / "a.png")
    write(tmp_path / "1" / "b.jpg")
    write(tmp_path / "1" / "c.png")
    classes = folder_classes(tmp_path, LABELS, 3)
    assert [(c.index, c.label, c.count) for c in classes] == [(1, "tabby", 2), (2, "espresso", 1)]


def test_grayscale_cmyk_and_palette_images_are_converted_and_counted(tmp_path):
    write(tmp_path / "0" / "grey.png", "L")
    write(tmp_path / "0" / "print.jpg", "CMYK")
    Image.new("P", (8, 8), 3).save(tmp_path / "0" / "palette.gif")
    write(tmp_path / "0" / "colour.png")
    (source,) = folder_classes(tmp_path, LABELS, 3)
    summary = Summary()
    loaded = source.load(3, (0.0, 1.0), summary)
    assert [image.shape[-1] for image in loaded] == [3, 3, 3, 3]
    assert all(0.0 <= image.min() and image.max() <= 1.0 for image in loaded)
    assert summary.converted == {"L": 1, "CMYK": 1, "P": 1}
    grey = loaded[[path.name for path in source.files].index("grey.png")]
    np.testing.assert_allclose(grey[..., 0], grey[..., 2])  # grey stays grey
    assert "1 CMYK image(s) converted" in summary.describe()
    # A grayscale model takes one channel, converted the other way.
    assert [image.shape[-1] for image in source.load(1, (0.0, 1.0), Summary())] == [1, 1, 1, 1]


def test_values_are_mapped_to_the_models_range(tmp_path):
    write(tmp_path / "0" / "a.png", colour=(255, 0, 0))
    (source,) = folder_classes(tmp_path, LABELS, 3)
    (image,) = source.load(3, (-1.0, 1.0), Summary())
    np.testing.assert_allclose(image[0, 0], [1.0, -1.0, -1.0])


def test_unreadable_files_and_decompression_bombs_are_skipped_by_name(tmp_path, monkeypatch):
    write(tmp_path / "0" / "good.png", size=(8, 8))
    (tmp_path / "0" / "broken.jpg").write_bytes(b"not a jpeg at all")
    write(tmp_path / "0" / "huge.png", size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64 x 64 is "too many" now; 8 x 8 is not
    (source,) = folder_classes(tmp_path, LABELS, 3)
    summary = Summary()
    loaded = source.load(3, (0.0, 1.0), summary)
    assert len(loaded) == 1
    reasons = dict(summary.skipped)
    assert "not a readable image" in reasons[str(tmp_path / "0" / "broken.jpg")]
    assert "more pixels than Pillow's safety limit" in reasons[str(tmp_path / "0" / "huge.png")]
    decoded = []
    convert = Image.Image.convert
    monkeypatch.setattr(
        Image.Image, "convert", lambda self, *a: decoded.append(self.size) or convert(self, *a)
    )
    source.load(3, (0.0, 1.0), Summary())
    assert decoded == [(8, 8)]  # the bomb's pixels were never decoded


def test_a_class_whose_every_file_is_unreadable_is_an_error(tmp_path):
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "broken.png").write_bytes(b"\x89PNG broken")
    (source,) = folder_classes(tmp_path, LABELS, 3)
    with pytest.raises(ValueError, match="No image of class 'goldfish' .0. could be read"):
        source.load(3, (0.0, 1.0), Summary())


def test_files_that_are_not_images_are_skipped_with_a_warning_naming_them(tmp_path):
    write(tmp_path / "0" / "a.png")
    (tmp_path / "0" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match="notes.txt"):
        folder_classes(tmp_path, LABELS, 3)


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"tabbby": ["a.png"]}, "Class 'tabbby' is not a label of the model. Did you mean 'tabby'?"),
        ({"7": ["a.png"]}, "Class '7' is not an output of the model, which has 3 classes (0 to 2)"),
        ({"0": ["notes.txt"]}, "holds no image"),
        ({"0": ["a.png"], "goldfish": ["b.png"]}, "Two class folders mean class 0"),
        ({}, "holds no class folder"),
    ],
)
def test_bad_folders_are_refused_before_reading_any_image(tmp_path, layout, message):
    for folder, files in layout.items():
        for name in files:
            if name.endswith(".png"):
                write(tmp_path / folder / name)
            else:
                (tmp_path / folder).mkdir(parents=True, exist_ok=True)
                (tmp_path / folder / name).write_text("x")
    with warnings.catch_warnings(), pytest.raises(ValueError) as raised:
        warnings.simplefilter("ignore")
        folder_classes(tmp_path, LABELS, 3)
    assert message in str(raised.value)


def test_without_labels_folders_must_be_class_indices():
    assert class_index("2", None, 3) == 2
    with pytest.raises(ValueError, match="name the folders by class index"):
        class_index("tabby", None, 3)


def test_folders_in_class_order_are_numbered_as_keras_numbers_them(tmp_path):
    for name in ("n02", "n01", "n03"):  # WordNet ids: sorted, they are classes 0, 1, 2
        write(tmp_path / name / "a.png")
    classes = folder_classes(tmp_path, LABELS, 3, in_class_order=True)
    assert [(c.index, c.label, c.files[0].parent.name) for c in classes] == [
        (0, "goldfish", "n01"),
        (1, "tabby", "n02"),
        (2, "espresso", "n03"),
    ]
    with pytest.raises(ValueError, match="`folders_in_class_order`"):
        folder_classes(tmp_path, LABELS, 3)
    with pytest.raises(ValueError, match="3 class folders for a model of 4 classes"):
        folder_classes(tmp_path, LABELS, 4, in_class_order=True)
