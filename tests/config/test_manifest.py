"""Manifests after a hard kill: a cut last line is skipped and moved aside, other damage is named; one process per shard."""

import errno
import json
import warnings

import pytest
from helpers import hold_lock, page_data, write_atlas

from xplique_maco._config import manifest as _manifest
from xplique_maco._config.manifest import append_entry, read_manifest, shard_lock
from xplique_maco._outputs.page import build_page

CUT = b'{"objective": "Neuron(logits, 7)", "ind'  # a line that a hard kill stopped half-way


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_an_append_after_a_cut_line_starts_on_a_fresh_one_and_keeps_the_cut_text(tmp_path):
    write_atlas(tmp_path, [0, 1])
    manifest = tmp_path / "manifest.jsonl"
    whole = manifest.read_bytes()
    with open(manifest, "ab") as file:
        file.write(CUT)
    assert read_manifest(manifest).cut == 3
    assert [entry["index"] for _, entry in read_manifest(manifest).entries] == [0, 1]
    append_entry(manifest, {"index": 7})
    append_entry(manifest, {"index": 8})
    assert manifest.read_bytes() == whole + b'{"index": 7}\n{"index": 8}\n'
    assert (tmp_path / "manifest.jsonl.cut").read_bytes() == CUT + b"\n"  # nothing lost
    assert read_manifest(manifest).cut is None


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes(b'{"index": 0}')
    assert [entry for _, entry in read_manifest(manifest).entries] == [{"index": 0}]
    append_entry(manifest, {"index": 1})
    assert manifest.read_bytes() == b'{"index": 0}\n{"index": 1}\n'
    assert not (tmp_path / "manifest.jsonl.cut").exists()


def test_the_page_skips_a_cut_last_line_and_leaves_the_manifest_alone(tmp_path):
    write_atlas(tmp_path, [0, 1, 2])
    manifest = tmp_path / "manifest.jsonl"
    lines = manifest.read_bytes().splitlines(keepends=True)
    manifest.write_bytes(b"".join(lines[:2]) + lines[2][:50])
    before = manifest.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a problem: the next render redoes unit 2
        build_page(tmp_path)
    assert [unit["index"] for unit in page_data(tmp_path)["units"]] == [0, 1]
    assert manifest.read_bytes() == before  # only the shard's render, holding its lock, heals it


def test_a_line_glued_onto_a_cut_one_by_an_older_version_counts(tmp_path):
    write_atlas(tmp_path, [0])
    manifest = tmp_path / "manifest.jsonl"
    with open(manifest, "ab") as file:
        file.write(CUT)  # then an append without a fresh line, as versions up to 0.1 made
    write_atlas(tmp_path, [1])
    assert len(manifest.read_bytes().splitlines()) == 2
    assert [entry["index"] for _, entry in read_manifest(manifest).entries] == [0, 1]
    build_page(tmp_path)
    assert [unit["index"] for unit in page_data(tmp_path)["units"]] == [0, 1]


# (what the manifest holds after its first whole line, the words of the error)
DAMAGED = [
    pytest.param(b"garbage\n", "line 2, is not a JSON object: 'garbage'", id="not JSON"),
    pytest.param(CUT + b"\n" + b'{"index": 1}\n', "line 2, is not a JSON object", id="cut line not last"),
    pytest.param(b"[1, 2]\n", "line 2, is not a JSON object: '[1, 2]'", id="a list"),
    pytest.param(b"\xff\xfe\n", "line 2, is not a JSON object", id="not UTF-8"),
]


@pytest.mark.parametrize("damage, message", DAMAGED)
def test_a_damaged_line_before_the_last_is_named_by_every_reader(tmp_path, damage, message, model):
    from xplique_maco.atlas import render_atlas

    write_atlas(tmp_path, [0])
    manifest = tmp_path / "manifest.jsonl"
    with open(manifest, "ab") as file:
        file.write(damage)
    before = manifest.read_bytes()
    expected = f"{manifest}, {message}"
    for read in (read_manifest, build_page):
        with pytest.raises(ValueError) as raised:
            read(manifest if read is read_manifest else tmp_path)
        assert expected in str(raised.value)
    with pytest.raises(ValueError, match="Fix or delete that line"):
        render_atlas(model, "logits", [0, 1], tmp_path, verbose=0, nb_steps=3, image_shape=[24, 24])
    assert manifest.read_bytes() == before and not (tmp_path / "index.html").exists()


def test_a_shard_takes_one_process_and_shards_that_share_no_objective_run_side_by_side(tmp_path):
    holder = hold_lock(tmp_path, (1, 2))
    try:
        for shard, holding in [((1, 2), "shard 1/2 into"), ((0, 1), "shard 1/2, which shares objectives")]:
            with pytest.raises(ValueError) as raised:
                with shard_lock(tmp_path, shard):
                    pytest.fail("a second holder")
            assert f"Another process is rendering {holding}" in str(raised.value)
            assert f"lock file {tmp_path / '.manifest.shard-1-of-2.jsonl.lock'}" in str(raised.value)
        for free in [(0, 2), (0, 4), (2, 4)]:  # 0/4 and 2/4 are halves of shard 0/2
            with shard_lock(tmp_path, free), shard_lock(tmp_path, free):  # the same thread again: fine
                pass
    finally:
        holder.kill()  # a hard kill: the operating system releases its lock
        holder.wait(timeout=30)
    for shard in [(1, 2), (3, 4)]:
        with shard_lock(tmp_path, shard):
            pass


def test_a_file_system_without_locks_warns_and_renders_unlocked(tmp_path, monkeypatch):
    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(_manifest.fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match=r"Cannot lock .*No locks available.*without the lock"):
        with shard_lock(tmp_path, (0, 1)):
            pass
