"""Files a user keeps: PNGs with the transparency as alpha, and the demo command."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_atlas
from test_page import page_data

from xplique_maco._plots import (
    plot_maco,
    plot_maco_grid,
    save_image,
    save_rgba,
    to_uint8,
    transparency_to_alpha,
)
from xplique_maco.cli import main


def read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path)), channels=0).numpy()


def test_rgba_png_carries_the_transparency_as_alpha(tmp_path):
    image = np.random.default_rng(0).uniform(-1, 1, size=(20, 30, 3)).astype("float32")
    transparency = np.zeros((20, 30, 1), "float32")
    transparency[5:10, 10:20] = 3.0
    path = save_rgba(tmp_path / "item.png", image, transparency, values_range=(-1, 1))
    pixels = read_png(path)
    assert pixels.shape == (20, 30, 4)
    np.testing.assert_array_equal(pixels[..., :3], to_uint8(image, (-1, 1)))
    assert (pixels[5:10, 10:20, 3] == 255).all() and (pixels[:5, :, 3] == 0).all()
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind


def test_uint8_respects_the_value_range_and_alpha_ignores_outliers():
    np.testing.assert_array_equal(
        to_uint8(np.array([0.0, 127.5, 255.0, 300.0]), (0, 255)), [0, 128, 255, 255]
    )
    mask = np.ones((100, 100))
    mask[0, 0] = 1e6  # one hot pixel must not make the rest transparent
    alpha = transparency_to_alpha(mask)
    assert alpha[5, 5] == 1.0


def test_grayscale_image_saves(tmp_path):
    path = save_image(tmp_path / "gray.png", np.full((8, 9, 1), 0.5))
    assert read_png(path).shape == (8, 9, 1)


def test_plots_return_axes_and_figures():
    import matplotlib

    matplotlib.use("Agg")
    images = np.random.default_rng(0).uniform(size=(3, 16, 16, 3))
    masks = np.random.default_rng(1).uniform(size=(3, 16, 16, 1))
    axis = plot_maco(images[0], masks[0])
    assert axis.get_images()[0].get_array().shape == (16, 16, 4)
    assert len(plot_maco(images[0], masks[0], show="both")) == 2
    figure = plot_maco_grid(images, masks, titles=["a", "b", "c"], columns=2)
    assert [ax.get_title() for ax in figure.axes[:3]] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="Got 2 titles for 3 images"):
        plot_maco_grid(images, masks, titles=["a", "b"])


def test_demo_writes_images_and_a_grid(tmp_path, capsys):
    code = main(
        [
            "demo",
            "--classes",
            "espresso",
            "1",
            "--steps",
            "2",
            "--image-size",
            "64",
            "--crops",
            "1",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert read_png(tmp_path / "967_espresso_rgba.png").shape == (64, 64, 4)
    assert read_png(tmp_path / "001_goldfish.png").shape == (64, 64, 3)
    assert (tmp_path / "grid.png").stat().st_size > 1000
    assert "grid.png" in capsys.readouterr().out
    units = page_data(tmp_path)["units"]
    assert [(unit["index"], unit["label"]) for unit in units] == [(1, "goldfish"), (967, "espresso")]
    assert units[1]["files"]["transparency"] == "967_espresso_transparency.png"


def test_demo_does_not_write_into_a_render_folder(tmp_path, capsys):
    write_atlas(tmp_path, [0])
    assert main(["demo", "--output", str(tmp_path)]) == 2
    assert "holds the results of another run (manifest.jsonl)" in capsys.readouterr().err
    assert not (tmp_path / "index.html").exists()


def test_demo_rejects_unknown_class(tmp_path, capsys):
    assert main(["demo", "--classes", "expresso", "--output", str(tmp_path)]) == 2
    assert "No class named 'expresso'" in capsys.readouterr().err


def test_display_contrast_is_robust_and_optional():
    import matplotlib

    matplotlib.use("Agg")
    image = np.random.default_rng(0).uniform(0.4, 0.6, size=(32, 32, 3))
    image[0, 0] = 1.0  # one outlier must not decide the contrast
    shown = plot_maco(image).get_images()[0].get_array()
    assert shown.min() == 0.0 and shown.max() == 1.0 and np.median(shown) > 0.3
    raw = plot_maco(image, contrast=None).get_images()[0].get_array()
    np.testing.assert_allclose(raw, to_uint8(image) / 255.0)
