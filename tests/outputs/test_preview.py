"""The live preview: in a Jupyter kernel, one picture of the images that updates in place during
the run and ends with the final images, their transparency as alpha."""

import base64
import io

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

pytestmark = pytest.mark.notebook

SETUP = """
import keras
from xplique_maco import Neuron, Preview, maco
keras.utils.set_random_seed(0)
inputs = keras.Input((24, 24, 3))
x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
x = keras.layers.GlobalAveragePooling2D()(x)
model = keras.Model(inputs, keras.layers.Dense(5, name="logits")(x))
settings = dict(nb_steps=6, image_shape=(24, 24), nb_crops=2, seed=0)
"""


def run_cells(*sources: str) -> tuple[list, list]:
    """Executes the cells in a fresh kernel; returns the outputs of the last one and every
    display message the kernel sent (the updates that the stored outputs no longer show)."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    client = NotebookClient(notebook, timeout=300, kernel_name="python3")
    messages = []
    original = client.process_message

    def record(message, cell, cell_index):
        if message["msg_type"] in ("display_data", "update_display_data"):
            messages.append(message)
        return original(message, cell, cell_index)

    client.process_message = record
    client.execute()
    return notebook.cells[-1].outputs, messages


def picture(output) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"])))


def test_verbose_in_a_notebook_shows_one_picture_updated_in_place_ending_with_alpha():
    outputs, messages = run_cells(
        SETUP, "images, transparencies = maco(Neuron(model, 'logits', [0, 1, 2]), verbose=1, **settings)"
    )
    shown = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(shown) == 1  # one picture, updated in place, not one per update
    final = picture(shown[0])
    assert final.mode == "RGBA" and final.size == (3 * 96, 96)  # three images in a row, with alpha
    kinds = [message["msg_type"] for message in messages]
    # Shown at step 0, updated at the last step (every 8 by default: 0 and 5) and at the end.
    assert kinds == ["display_data", "update_display_data", "update_display_data"]
    first = Image.open(io.BytesIO(base64.b64decode(messages[0]["content"]["data"]["image/png"])))
    assert first.mode == "RGB"  # no transparency before the end


def test_a_preview_callback_sets_how_often_and_verbose_0_shows_nothing():
    outputs, messages = run_cells(
        SETUP,
        "maco(Neuron(model, 'logits', 0), verbose=0, **settings)",
        "maco(Neuron(model, 'logits', 0), verbose=0, callbacks=[Preview(every=2, size=32)], **settings)",
    )
    kinds = [message["msg_type"] for message in messages]
    assert kinds == ["display_data"] + ["update_display_data"] * 4  # shown at step 0; 2, 4, 5 and the end
    assert picture([o for o in outputs if "image/png" in o.get("data", {})][0]).size == (32, 32)
