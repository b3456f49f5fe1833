"""Crops: exact adjoint gradient, deterministic, seeded per item, wrapped around a periodic image."""

import numpy as np
import tensorflow as tf

from xplique_maco import Layer, Neuron, maco
from xplique_maco._rendering.crops import GLANCE_SCALE, CropPlan, blur_factors, crop_and_resize, glance_count


def drawn(images, seeds, step, nb_crops, crop_range, crop_extent, output_size, noise_std, **options):
    """The crops a `CropPlan` of these options draws (`Crops`: sources, boxes, box indices, noise)."""
    plan = CropPlan(nb_crops, output_size, **options)
    return plan.draw(images, seeds, step, crop_range, crop_extent, noise_std)


def random_crops(images, seeds, step, nb_crops, crop_range, crop_extent, output_size, noise_std, **options):
    """The noisy crops a MACO step feeds the model (in one pass), as the step makes them."""
    crops = drawn(images, seeds, step, nb_crops, crop_range, crop_extent, output_size, noise_std, **options)
    return (
        crop_and_resize(
            crops.sources, crops.boxes, crops.box_indices, output_size, options.get("wrap", False)
        )
        + crops.noise
    )


def test_whole_image_box_equals_bilinear_resize():
    images = tf.random.stateless_uniform((2, 20, 30, 3), seed=(0, 1))
    boxes = tf.constant([[0.0, 0.0, 1.0, 1.0]] * 2)
    crops = crop_and_resize(images, boxes, tf.constant([0, 1]), (13, 17))
    expected = tf.image.resize(images, (13, 17), method="bilinear", antialias=False)
    np.testing.assert_allclose(crops.numpy(), expected.numpy(), atol=1e-5)


def test_gradient_is_the_exact_adjoint_and_deterministic():
    images = tf.random.stateless_uniform((2, 40, 40, 3), seed=(0, 2))
    corners = tf.random.stateless_uniform((16, 2), seed=(0, 3), maxval=0.5)
    boxes = tf.concat([corners, corners + 0.45], axis=1)
    box_indices = tf.repeat(tf.range(2), 8)
    upstream = tf.random.stateless_normal((16, 24, 24, 3), seed=(0, 4))

    def gradient():
        with tf.GradientTape() as tape:
            tape.watch(images)
            crops = crop_and_resize(images, boxes, box_indices, (24, 24))
        return tape.gradient(crops, images, output_gradients=upstream).numpy(), crops.numpy()

    first, crops = gradient()
    # <A x, y> == <x, A^T y> for the linear crop operator A.
    np.testing.assert_allclose(np.sum(crops * upstream.numpy()), np.sum(images.numpy() * first), rtol=1e-4)
    for _ in range(20):
        np.testing.assert_array_equal(gradient()[0], first)


def test_random_crops_depend_only_on_the_item_seed():
    images = tf.random.stateless_uniform((3, 32, 32, 3), seed=(0, 5))
    seeds = tf.constant([[7, 0], [7, 1], [7, 2]], tf.int64)
    args = (
        tf.constant(4, tf.int64),
        2,
        tf.constant([0.3, 0.8]),
        tf.constant([1.0, 1.0]),
        (16, 16),
        tf.constant(0.1),
    )
    batch = random_crops(images, seeds, *args).numpy()
    alone = random_crops(images[1:2], seeds[1:2], *args).numpy()
    np.testing.assert_allclose(batch[2:4], alone, atol=1e-6)
    other_step = random_crops(images, seeds, tf.constant(5, tf.int64), *args[1:]).numpy()
    assert np.abs(other_step - batch).mean() > 0.01


def test_shrunk_crops_are_antialiased():
    # Stripes at the image's Nyquist frequency: any crop shrunk by about 2 must average them out,
    # where a plain 2-tap bilinear resize shows strong moire.
    stripes = tf.tile(tf.constant([0.0, 1.0])[None, None, :, None], (1, 96, 48, 3))
    assert blur_factors((96, 96), (40, 40)) == (1.5, 2.0)
    crops = random_crops(
        stripes,
        tf.constant([[0, 0]], tf.int64),
        tf.constant(0, tf.int64),
        4,
        tf.constant([0.9, 1.0]),  # shrunk by 2.16 to 2.4: the copy blurred by 2
        tf.constant([1.0, 1.0]),
        (40, 40),
        tf.constant(0.0),
        antialias=True,
    ).numpy()
    aliased = tf.image.resize(stripes, (40, 40), method="bilinear", antialias=False).numpy()
    assert aliased.std() > 0.2
    assert crops.std() < 0.02 and abs(crops.mean() - 0.5) < 0.01


def test_glances_see_the_whole_image_as_a_thumbnail():
    # Nyquist stripes: crops that hardly shrink the image keep them; a glance (the whole image,
    # blurred as if shrunk to 2/7 of the model's input side) must average them out.
    stripes = tf.tile(tf.constant([0.0, 1.0])[None, None, :, None], (2, 96, 48, 3))
    arguments = (
        tf.constant([[0, 0], [0, 1]], tf.int64),
        tf.constant(0, tf.int64),
        4,
        tf.constant([0.3, 0.4]),  # 29 to 38 pixels sampled at 40: no blurred copy
        tf.constant([1.0, 1.0]),
        (40, 40),
        tf.constant(0.0),
    )
    _, boxes, _, _ = drawn(stripes, *arguments, glances=1)
    np.testing.assert_allclose(boxes.numpy()[[0, 4]], [[0.0, 0.0, 1.0, 1.0]] * 2)  # centred, whole
    assert np.all(boxes.numpy()[[1, 2, 3, 5, 6, 7], 2] - boxes.numpy()[[1, 2, 3, 5, 6, 7], 0] <= 0.4)
    crops = random_crops(stripes, *arguments, glances=1).numpy()
    glances, others = crops[[0, 4]], crops[[1, 2, 3, 5, 6, 7]]
    assert glances.std() < 0.02 and abs(glances.mean() - 0.5) < 0.01
    assert others.std() > 0.2
    plain = random_crops(stripes, *arguments).numpy()
    np.testing.assert_array_equal(plain[[1, 2, 3, 5, 6, 7]], others)  # the other crops are unchanged


def test_glances_beside_antialiased_crops_sample_their_own_copy():
    # An image twice the model's input: shrunk crops sample the antialiased copies, glances a
    # copy appended after them (blurred by 2 / (2/7) = 7 pixels), and no box reads another's.
    stripes = tf.tile(tf.constant([0.0, 1.0])[None, None, :, None], (2, 80, 40, 3))
    arguments = (
        tf.constant([[0, 0], [0, 1]], tf.int64),
        tf.constant(0, tf.int64),
        4,
        tf.constant([0.3, 1.0]),
        tf.constant([1.0, 1.0]),
        (40, 40),
        tf.constant(0.0),
    )
    plain_sources, _, plain_indices, _ = drawn(stripes, *arguments, antialias=True)
    sources, boxes, indices, _ = drawn(stripes, *arguments, antialias=True, glances=1)
    copies = len(blur_factors((80, 80), (40, 40)))
    assert copies == 2 and sources.shape[0] == plain_sources.shape[0] + 2 == 2 * (1 + copies) + 2
    np.testing.assert_array_equal(sources[: plain_sources.shape[0]], plain_sources)
    np.testing.assert_array_equal(indices.numpy()[[0, 4]], [6, 7])  # each image's own glance copy
    np.testing.assert_array_equal(
        indices.numpy()[[1, 2, 3, 5, 6, 7]], plain_indices.numpy()[[1, 2, 3, 5, 6, 7]]
    )
    crops = random_crops(stripes, *arguments, antialias=True, glances=1).numpy()
    assert crops[[0, 4]].std() < 0.01 and abs(crops[[0, 4]].mean() - 0.5) < 0.01
    np.testing.assert_allclose(boxes.numpy()[[0, 4]], [[0.0, 0.0, 1.0, 1.0]] * 2)


def test_wrapped_glances_take_every_shift_of_the_periodic_image():
    images = tf.random.stateless_uniform((1, 64, 64, 3), seed=(0, 9))
    seeds = tf.constant([[3, 0]], tf.int64)
    range_, extent = tf.constant([0.3, 1.0]), tf.constant([1.0, 1.0])
    tops = [
        drawn(
            images,
            seeds,
            tf.constant(step, tf.int64),
            2,
            range_,
            extent,
            (32, 32),
            tf.constant(0.0),
            wrap=True,
            glances=2,
        )[1].numpy()
        for step in range(4)
    ]
    sizes = np.concatenate([box[:, 2] - box[:, 0] for box in tops])
    np.testing.assert_allclose(sizes, 1.0, atol=1e-6)  # every crop a glance: the whole period
    assert len({round(float(box[0, 0]), 4) for box in tops}) == 4  # at a new shift every step


def test_glance_count_rounds_half_up():
    assert [glance_count(8, 0.25), glance_count(4, 0.25), glance_count(2, 0.25), glance_count(1, 0.25)] == [
        2,
        1,
        1,
        0,
    ]
    assert glance_count(8, 0.0) == 0 and glance_count(8, 1.0) == 8
    assert GLANCE_SCALE * 224 == 64


def test_glances_are_on_by_default_and_change_the_image(model):
    def render(**glance):
        return maco(
            Neuron(model, "logits", 1), nb_steps=3, image_shape=(32, 32), seed=0, verbose=0, **glance
        )[0].numpy()

    np.testing.assert_array_equal(render(), render(glance=0.25))
    assert np.abs(render() - render(glance=0.0)).max() > 1e-3


def test_no_blurred_copy_when_the_image_is_not_larger_than_the_model_input():
    assert blur_factors((256, 256), (224, 224)) == ()
    assert blur_factors((512, 512), (224, 224)) == (1.5, 2.0)
    assert blur_factors((1280, 640), (224, 224)) == (1.5, 2.0)  # the width limits the largest box


def test_wrapped_crops_look_at_the_border_as_much_as_at_the_centre(model):
    def border_over_centre(wrap_crops):
        _, transparency = maco(
            Layer(model, "conv1"),
            nb_steps=12,
            image_shape=(64, 64),
            nb_crops=8,
            crop_size=(0.3, 0.5),
            wrap_crops=wrap_crops,
            glance=0.0,  # the random crops' coverage alone (a glance sees the whole image)
            seed=1,
            verbose=0,
        )
        mask = transparency[0, :, :, 0].numpy()
        border = np.concatenate(
            [mask[:4].ravel(), mask[-4:].ravel(), mask[:, :4].ravel(), mask[:, -4:].ravel()]
        )
        return border.mean() / mask[24:40, 24:40].mean()

    assert border_over_centre(True) > 0.6  # the image is periodic: every pixel is equally often seen
    assert border_over_centre(False) < 0.3  # crops inside the image rarely reach its border


def _graph_size(function, *specs) -> int:
    """Nodes of the traced graph of `function`, those of the functions it calls included."""
    graph = tf.function(function).get_concrete_function(*specs).graph.as_graph_def()
    return len(graph.node) + sum(len(called.node_def) for called in graph.library.function)


def test_the_traced_crops_do_not_grow_with_the_number_of_items():
    def plan(images, seeds):
        return drawn(images, seeds, tf.constant(3), 4, (0.3, 1.0), (1.0, 1.0), (16, 16), 0.05)

    def sizes(count):
        images = tf.TensorSpec((count, 40, 40, 3), tf.float32)
        return _graph_size(plan, images, tf.TensorSpec((count, 2), tf.int64))

    assert sizes(64) == sizes(4)


def test_the_initial_phases_do_not_grow_with_the_number_of_items():
    from xplique_maco._rendering.parametrization import FourierBaseline, MagnitudeConstrained

    for parametrization in (MagnitudeConstrained(), FourierBaseline()):
        spectrum = parametrization.spectrum(None, 3, (24, 24))

        def initial(seeds, parametrization=parametrization, spectrum=spectrum):
            return parametrization.initial(spectrum, seeds, None, (24, 24))

        small, large = (_graph_size(initial, tf.TensorSpec((n, 2), tf.int64)) for n in (4, 64))
        assert large == small, type(parametrization).__name__
