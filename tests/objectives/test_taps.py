"""Finding layers in the models users bring: nested models, Sequential wrappers, shared layers."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ONE_STEP, BatchSizes, assert_refused

from xplique_maco import Channel, Direction, History, Layer, Neuron, evaluate, maco
from xplique_maco._objectives.extractor import feature_model

# Renders in this module: a few steps of 32 x 32 images, two large crops.
RUN = dict(image_shape=(32, 32), nb_crops=2, crop_size=(0.6, 1.0), verbose=0, seed=0)


def base_model(counter=None, name="base") -> keras.Model:
    """A small functional 'backbone' with a fixed input size, like a keras.applications base."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="stem")(inputs)
    if counter is not None:
        x = BatchSizes(counter, name="calls")(x)
    x = keras.layers.Conv2D(12, 3, strides=2, activation="relu", name="block")(x)
    return keras.Model(inputs, keras.layers.Conv2D(16, 3, activation="relu", name="top")(x), name=name)


def head(base: keras.Model) -> keras.Model:
    """The transfer-learning setup: the base called inside a functional head."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base(inputs, training=False))
    return keras.Model(inputs, keras.layers.Dense(5, name="logits")(x), name="classifier")


def rises(objective, steps: int = 10) -> bool:
    history = History()
    maco(objective, nb_steps=steps, callbacks=[history], **RUN)
    values = history.values.mean(axis=1)
    return values[-3:].mean() > values[:3].mean()


@pytest.fixture(scope="module")
def photos():
    return tf.random.stateless_uniform((2, 32, 32, 3), seed=(1, 2)).numpy()


def test_the_nested_model_output_is_read_where_the_outer_model_calls_it(photos):
    base = base_model()
    outer = head(base)
    objective = Channel(outer, "base", 3)
    expected = base(photos).numpy()[..., 3].mean(axis=(1, 2))
    np.testing.assert_allclose(evaluate(Channel(outer, "base", [3, 3]), photos), expected, rtol=1e-5)
    assert rises(objective)


def test_a_sequential_around_a_base_reaches_it_by_index_and_its_layers_by_path(photos):
    base = base_model()
    wrapper = keras.Sequential(
        [keras.Input((32, 32, 3)), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)]
    )
    by_index = Channel(wrapper, 0, 3)  # Sequential.layers has no InputLayer: 0 is the base
    assert by_index.layer_names == ("base",)
    inner = keras.Model(base.input, base.get_layer("block").output)(photos).numpy()
    objective = Channel(wrapper, "base/block", 5)
    np.testing.assert_allclose(
        evaluate(Channel(wrapper, "base/block", [5, 5]), photos), inner[..., 5].mean(axis=(1, 2)), rtol=1e-5
    )
    assert rises(by_index) and rises(objective)


def test_a_layer_inside_the_base_by_path_and_by_object(photos):
    base = base_model()
    outer = head(base)
    by_path = Channel(outer, "base/block", [1, 4])
    by_object = Channel(outer, base.get_layer("block"), [1, 4])
    assert repr(by_path) == repr(by_object) == "Channel(base/block, [1, 4])"
    inner = keras.Model(base.input, base.get_layer("block").output)(photos).numpy()
    expected = inner[..., [1, 4]].mean(axis=(1, 2)).diagonal()
    np.testing.assert_allclose(evaluate(by_path, photos), expected, rtol=1e-5)
    np.testing.assert_allclose(evaluate(by_object, photos), expected, rtol=1e-5)
    assert rises(by_path)


def test_a_rewrapped_fixed_size_model_and_two_levels_of_nesting(photos):
    fixed = head(base_model())
    inputs = keras.Input((32, 32, 3))
    wrapped = keras.Model(inputs, fixed(inputs), name="wrapped")
    np.testing.assert_allclose(
        evaluate(Neuron(wrapped, -1, [2, 2]), photos), fixed(photos).numpy()[:, 2], rtol=1e-5
    )
    deep = Direction(wrapped, "classifier/base/top", np.linspace(-1, 1, 16))
    assert deep.layer_names == ("classifier/base/top",)
    assert rises(Neuron(wrapped, -1, 2)) and rises(
        deep, steps=20
    )  # a random base: the direction moves slowly


def test_every_layer_runs_once_when_an_objective_reads_inside_and_after_the_base(photos):
    calls = []
    base = base_model(calls)
    outer = head(base)
    objective = Neuron(outer, "logits", 1) + Channel(outer, "base/block", 2) + Layer(outer, "base/stem")
    extractor = feature_model(outer, objective.taps)
    calls.clear()
    logits, block, stem = extractor(photos)
    assert len(calls) == 1  # the layer between the stem and the block ran once, not once per output
    np.testing.assert_allclose(logits, outer(photos), rtol=1e-5)
    np.testing.assert_allclose(
        stem, keras.Model(base.input, base.get_layer("stem").output)(photos), rtol=1e-5
    )
    assert block.shape == (2, 14, 14, 12)


def test_a_name_only_inside_a_nested_model_says_which_model_and_the_path():
    outer = head(base_model())
    with pytest.raises(ValueError) as raised:
        Channel(outer, "block", 0)
    message = str(raised.value)
    assert "inside the nested model 'base'" in message and "layer='base/block'" in message
    with pytest.raises(
        ValueError, match="Layer 'base/blok' not found in model 'base'.*Did you mean 'base/block'"
    ):
        Channel(outer, "base/blok", 0)


def test_a_layer_shared_by_two_models_is_read_in_the_model_passed_in(photos):
    keras.utils.set_random_seed(3)
    shared = keras.layers.Conv2D(4, 3, name="shared")
    first_input = keras.Input((32, 32, 3))
    keras.Model(first_input, shared(first_input))  # the first call: on the raw image
    second_input = keras.Input((32, 32, 3))
    darker = keras.layers.Rescaling(0.25, name="darker")(second_input)
    second = keras.Model(second_input, keras.layers.GlobalAveragePooling2D()(shared(darker)))
    expected = shared(photos * 0.25).numpy()[..., 1].mean(axis=(1, 2))
    np.testing.assert_allclose(evaluate(Channel(second, "shared", [1, 1]), photos), expected, rtol=1e-5)


def test_a_layer_called_twice_in_one_model_is_refused_until_a_call_is_chosen(photos):
    keras.utils.set_random_seed(4)
    shared = keras.layers.Conv2D(4, 3, name="shared")
    inputs = keras.Input((32, 32, 3))
    first = shared(inputs)
    second = shared(keras.layers.Rescaling(-1.0, name="negated")(inputs))
    model = keras.Model(inputs, keras.layers.Add()([first, second]))
    for ambiguous in ("shared", shared):
        with pytest.raises(ValueError, match="called 2 times inside model.*'shared@0' or 'shared@1'"):
            Channel(model, ambiguous, 0)
    expected = shared(-photos).numpy()[..., 0].mean(axis=(1, 2))
    for chosen in ("shared@1", second):
        objective = Channel(model, chosen, [0, 0])
        assert objective.layer_names == ("shared@1",)
        np.testing.assert_allclose(evaluate(objective, photos), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="call 2 does not exist"):
        Channel(model, "shared@2", 0)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.conv = keras.layers.Conv2D(6, 3, name="inner_conv")

    def call(self, inputs):
        return self.conv(inputs)


def test_a_subclassed_nested_model_has_a_readable_output_and_a_clear_error_inside():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(Subclassed()(inputs)))
    assert Channel(model, "subclassed", 2).layer_names == ("subclassed",)
    with pytest.raises(ValueError, match="'subclassed'.*is not a functional or Sequential model"):
        Channel(model, "subclassed/inner_conv", 0)


def test_layers_and_tensors_from_elsewhere_are_refused():
    outer = head(base_model())
    stranger = keras.layers.Dense(3, name="stranger")
    with pytest.raises(ValueError, match="Layer 'stranger' is not computed inside model 'classifier'"):
        Neuron(outer, stranger, 0)
    elsewhere = keras.Input((4,))
    with pytest.raises(ValueError, match="This symbolic tensor is not computed inside model 'classifier'"):
        Neuron(outer, keras.layers.Dense(2)(elsewhere), 0)


def probability_heads():
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense_softmax = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="probs")(pooled))
    logits = keras.layers.Dense(4, name="logits")(pooled)
    softmax_layer = keras.Model(inputs, keras.layers.Softmax(name="softmax")(logits))
    sigmoid = keras.Model(inputs, keras.layers.Activation("sigmoid", name="sigmoid")(logits))
    outer_input = keras.Input((32, 32, 3))
    nested = keras.Model(outer_input, dense_softmax(outer_input))
    return dense_softmax, softmax_layer, sigmoid, nested


def test_a_softmax_or_sigmoid_at_the_target_warns_and_says_how_to_read_logits():
    dense_softmax, softmax_layer, sigmoid, nested = probability_heads()
    expected = [
        (dense_softmax, "ends in a softmax", "no activation on 'probs'"),
        (softmax_layer, "ends in a softmax", "the layer before it, 'logits'"),
        (sigmoid, "ends in a sigmoid", "the layer before it, 'logits'"),
        (nested, f"ends in a softmax (at '{dense_softmax.name}/probs')", "classifier_activation=None"),
    ]
    for model, what, how in expected:
        with pytest.warns(UserWarning) as caught:
            Neuron(model, -1, 1)
        message = str(caught[0].message)
        assert what in message and how in message and "Target the logits" in message
        assert caught[0].filename == __file__  # points at the user's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Neuron(softmax_layer, "logits", 1)  # logits: no warning


@pytest.mark.parametrize(
    "fold, tied",
    [
        (lambda x: keras.layers.Flatten()(x), True),
        (lambda x: keras.layers.Reshape((-1,))(x), True),
        (lambda x: keras.layers.Reshape((8, 8 * 4))(x), True),  # each row of the map becomes one token
        (lambda x: keras.layers.Reshape((64, 4))(x), False),  # tokens keep their features
        (lambda x: keras.layers.GlobalAveragePooling2D()(x), False),
        (lambda x: keras.layers.Flatten()(keras.layers.MaxPooling2D(8)(x)), False),  # one position left
    ],
)
def test_only_folding_positions_into_features_ties_a_layer_to_positions(fold, tied):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, strides=4, padding="same")(inputs)  # 8 x 8 positions
    x = fold(x)
    pooled = x if len(x.shape) == 2 else keras.layers.GlobalAveragePooling1D()(x)
    pooled = keras.layers.Dense(3, name="squeeze")(pooled)
    excited = keras.layers.Reshape((1, 1, 3))(pooled)  # squeeze-and-excite style: no positions
    model = keras.Model(inputs, keras.layers.Flatten(name="out")(excited))
    assert (Neuron(model, "out", 0).fixed_layout is not None) == tied


def test_layers_found_by_index(model):
    assert Neuron(model, -1, 0).layer_names == ("logits",)
    assert Layer(model, 1).layer_names == ("conv1",)  # index 0 is the InputLayer of a functional model


def test_one_feature_model_outputs_each_layer_once(model):
    objective = Channel(model, "conv2", 1) + Channel(model, "conv2", 3) + Neuron(model, "logits", 2)
    assert objective.layer_names == ("conv2", "logits")
    extractor = feature_model(model, objective.taps)
    assert len(extractor.outputs) == 2
    assert feature_model(model, objective.taps) is extractor


def test_unsupported_output_rank_is_refused():
    inputs = keras.Input((8, 8, 3))
    volume = keras.layers.Reshape((2, 4, 8, 3), name="volume")(inputs)
    model = keras.Model(inputs, volume)
    with pytest.raises(
        ValueError, match=r"outputs shape \(None, 2, 4, 8, 3\) \(rank 5\), which is not supported"
    ):
        Layer(model, "volume")


def two_input_model():
    a, b = keras.Input((8, 8, 3)), keras.Input((4,))
    return keras.Model(
        [a, b], keras.layers.Dense(2, name="out")(keras.layers.Concatenate()([keras.layers.Flatten()(a), b]))
    )


def vector_model():
    inputs = keras.Input((10,))
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(inputs))


def channels_first_model():
    inputs = keras.Input((3, 32, 32))
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(keras.layers.Flatten()(inputs)))


def test_the_channels_first_error_gives_a_wrapper_that_works():
    original = channels_first_model()
    with pytest.raises(ValueError, match=r"keras.Input\(\(32, 32, 3\)\).*Permute\(\(3, 1, 2\)\)") as error:
        maco(Neuron(original, "out", 0), nb_steps=1, verbose=0)
    assert "looks channels-first" in str(error.value)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, original(keras.layers.Permute((3, 1, 2))(inputs)))
    images, _ = maco(Neuron(model, -1, 0), nb_steps=1, image_shape=(32, 32), nb_crops=1, verbose=0)
    assert images.shape == (1, 32, 32, 3)


def test_a_misspelled_nested_layer_suggests_a_full_path_that_works():
    inner_input = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="block_6_expand")(inner_input)
    inner = keras.Model(inner_input, keras.layers.Conv2D(4, 3, name="block_6_project")(x), name="base")
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inner(inputs)))
    for typed in ("base/block_6_expnd", "block_6_expnd"):
        with pytest.raises(ValueError, match="Did you mean 'base/block_6_expand'") as error:
            Channel(model, typed, 0)
        suggested = str(error.value).split("Did you mean ")[1].split("'")[1]
        assert Channel(model, suggested, 0).layer_names == ("base/block_6_expand",)


def integer_input():
    inputs = keras.Input((16, 16, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(x), name="uint8_model")


def rendering(build):
    """maco, one step, on unit 0 of layer 'out' of the model `build()` makes."""
    return lambda m: maco(Neuron(build(), "out", 0), nb_steps=1)


# (bad call, on the tiny classifier or on a model of its own, error type, words the message must contain)
ERRORS = [
    pytest.param(
        lambda m: Neuron(object(), 0, 0), TypeError, "Expected a keras.Model", id="model of wrong type"
    ),
    pytest.param(
        lambda m: Neuron("not a model", "logits", 1),
        TypeError,
        "Expected a keras.Model, received str",
        id="model a string",
    ),
    pytest.param(
        lambda m: Neuron(m, ["logits"], 0),
        TypeError,
        "`layer` must be a layer name",
        id="layer of wrong type",
    ),
    pytest.param(
        lambda m: Channel(m, 2.0, 1),
        TypeError,
        "`layer` must be a layer name or path (str), an index (int), a keras layer or a symbolic tensor",
        id="layer a float",
    ),
    pytest.param(lambda m: Neuron(m, "logit", 0), ValueError, "Did you mean 'logits'", id="unknown layer"),
    pytest.param(
        lambda m: Channel(m, "conv3", 1),
        ValueError,
        "Layer 'conv3' not found in model 'tiny_cnn'. Did you mean 'conv2' or 'conv1'",
        id="unknown layer, two suggestions",
    ),
    pytest.param(lambda m: Neuron(m, 99, 0), ValueError, "accepted: -5 to 4", id="layer index too large"),
    pytest.param(
        lambda m: Channel(m, 7, 1),
        ValueError,
        "Layer index 7 is out of range for model 'tiny_cnn' with 5 layers",
        id="layer index 7",
    ),
    pytest.param(
        lambda m: Layer(
            keras.Model(i := keras.Input((4, 4, 3)), keras.layers.Reshape((2, 2, 4, 3), name="r")(i)), "r"
        ),
        ValueError,
        "rank 5",
        id="unsupported rank",
    ),
    pytest.param(
        lambda m: maco(
            Neuron(
                keras.Model(
                    [a := keras.Input((8, 8, 3)), b := keras.Input((8, 8, 3))],
                    keras.layers.Add(name="s")([a, b]),
                ),
                "s",
                0,
            )
        ),
        ValueError,
        "has 2 image inputs left free",
        id="two image inputs",
    ),
    pytest.param(
        rendering(two_input_model),
        ValueError,
        "and needs the value of every other one. Missing: ",
        id="an image and a vector input, the vector not given",
    ),
    pytest.param(
        rendering(vector_model),
        ValueError,
        "of shape (None, 10), which is not an image",
        id="vector input",
    ),
    pytest.param(
        lambda m: maco(
            Neuron(keras.Model(c := keras.Input((3, 16, 16)), keras.layers.Conv2D(2, 1, name="k")(c)), "k", 0)
        ),
        ValueError,
        "channels-first",
        id="channels-first input",
    ),
    pytest.param(
        rendering(channels_first_model), ValueError, "looks channels-first", id="channels-first dense"
    ),
    pytest.param(
        lambda m: maco(Neuron(integer_input(), "conv", 0), **ONE_STEP),
        ValueError,
        "takes uint8 input",
        id="uint8 input",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_bad_input_gets_a_clear_error_before_any_computation(model, call, error, message):
    assert_refused(lambda: call(model), error, message)
