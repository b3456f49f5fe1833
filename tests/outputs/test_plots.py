"""Seeing and keeping results: PNGs with the transparency as alpha, plots, display contrast."""

import os

import numpy as np
import pytest
from helpers import assert_refused, read_png

from xplique_maco._outputs.plots import (
    plot_maco,
    plot_maco_grid,
    save_image,
    save_rgba,
    to_uint8,
    transparency_to_alpha,
)


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


def test_the_grid_honours_show_and_refuses_unknown_values():
    import matplotlib

    matplotlib.use("Agg")
    images = np.random.default_rng(0).uniform(size=(3, 16, 16, 3))
    masks = np.random.default_rng(1).uniform(size=(3, 16, 16, 1))
    shown = [ax.get_images() for ax in plot_maco_grid(images, masks, columns=2, show="both").axes]
    # Each image then its map, two images a row: 4 cells a row, the last two empty.
    assert [len(cell) for cell in shown] == [1, 1, 1, 1, 1, 1, 0, 0]
    assert [cell[0].get_array().shape for cell in shown[:2]] == [(16, 16, 3), (16, 16)]
    alpha = plot_maco_grid(images, masks, columns=2).axes[0].get_images()[0].get_array()
    plain = plot_maco_grid(images, masks, columns=2, show="image").axes[0].get_images()[0].get_array()
    assert alpha.shape == (16, 16, 4) and plain.shape == (16, 16, 3)
    with pytest.raises(ValueError, match="`show` must be 'alpha', 'image' or 'both', received 'foo'"):
        plot_maco_grid(images, masks, show="foo")
    with pytest.raises(ValueError, match="needs the transparency maps"):
        plot_maco_grid(images, show="both")


def test_display_contrast_is_robust_and_optional():
    import matplotlib

    matplotlib.use("Agg")
    image = np.random.default_rng(0).uniform(0.4, 0.6, size=(32, 32, 3))
    image[0, 0] = 1.0  # one outlier must not decide the contrast
    shown = plot_maco(image).get_images()[0].get_array()
    assert shown.min() == 0.0 and shown.max() == 1.0 and np.median(shown) > 0.3
    raw = plot_maco(image, contrast=None).get_images()[0].get_array()
    np.testing.assert_allclose(raw, to_uint8(image) / 255.0)


def test_plot_errors_and_file_modes(tmp_path):
    with pytest.raises(ValueError, match="does not match image shape"):
        plot_maco(np.zeros((8, 8, 3)), np.zeros((4, 4, 1)))
    axes = plot_maco(np.zeros((2, 8, 8, 3)), np.ones((2, 8, 8, 1)))  # a batch: one axes per image
    assert len(axes) == 2 and axes[1].get_images()[0].get_array().shape == (8, 8, 4)
    path = save_image(tmp_path / "x.png", np.zeros((4, 4, 3)))
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# (bad call, error type, words the message must contain)
ERRORS = [
    pytest.param(lambda: to_uint8(np.zeros(3), (1, 1)), ValueError, "low < high", id="to_uint8 bad range"),
    pytest.param(
        lambda: save_rgba("/tmp/x.png", np.zeros((4, 4, 3)), np.zeros((5, 5, 1))),
        ValueError,
        "does not match",
        id="rgba wrong mask shape",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(call, error, message):
    assert_refused(call, error, message)
