"""`ocrsr upscale` and `ocrsr read`: the trained models on a folder of images or a TextZoom
split, with the files they write, the readings they print and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_image, raw_records, write_raw_lmdb
from PIL import Image

from ocrsr_lib.cli import main
from ocrsr_lib.own_images import ImageInputs, read_images, reading_accuracy


def word_crops(folder, sizes=((40, 12), (200, 50), (64, 16))):
    """Three word crops of different sizes and formats in a new folder."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index, (size, suffix) in enumerate(zip(sizes, (".png", ".jpg", ".bmp"), strict=True)):
        random_image(rng, size).save(folder / f"crop{index}{suffix}")
    (folder / "notes.txt").write_text("not an image")
    return folder


def png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB"
        return np.array(image)


def test_upscaling_a_split_writes_one_png_per_record_and_the_labels(tiny_recipes, tmp_path):
    from ocrsr_lib.config import setup
    from ocrsr_lib.data.textzoom import TextZoomDataset
    from ocrsr_lib.runs import trained

    split, out = tiny_recipes / "test" / "easy", tmp_path / "upscaled"
    arguments = ["upscale", "edsr", str(split), "--out", str(out), "--device", "cpu"]
    assert main([*arguments, "--textzoom", str(tiny_recipes), "--batch", "3"]) == 0
    dataset = TextZoomDataset(split)
    names = [f"{index:09d}.png" for index in range(1, 5)]
    assert sorted(path.name for path in out.iterdir()) == [*names, "labels.tsv"]
    rows = (out / "labels.tsv").read_text().splitlines()
    assert rows == ["file\tlabel"] + [
        f"{n}\t{w}" for n, w in zip(names, dataset.labels(), strict=True)
    ]
    session = setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False)
    model = trained(session, "edsr").model  # from the cache the command filled
    with torch.no_grad():
        expected = model(torch.stack([dataset[i][0] for i in range(4)]))
    for name, image in zip(names, expected, strict=True):
        pixels = torch.from_numpy(png(out / name)).permute(2, 0, 1).float() / 255
        assert pixels.shape == (3, 32, 128)
        assert (pixels - image.clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-6


def test_upscaling_a_folder_keeps_the_names_and_resizes_to_the_model_input(tiny_recipes, tmp_path):
    crops, out = word_crops(tmp_path / "crops"), tmp_path / "upscaled"
    arguments = ["upscale", "edsr", str(crops), "--out", str(out), "--device", "cpu"]
    assert main([*arguments, "--textzoom", str(tiny_recipes)]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["crop0.png", "crop1.png", "crop2.png"]
    assert all(png(path).shape == (32, 128, 3) for path in out.iterdir())


def test_upscale_refuses_to_replace_a_file_before_training(tiny_recipes, tmp_path, capsys):
    crops, out = word_crops(tmp_path / "crops"), tmp_path / "upscaled"
    out.mkdir()
    (out / "crop1.png").write_bytes(b"someone else's file")
    arguments = ["upscale", "edsr", str(crops), "--out", str(out), "--device", "cpu"]
    assert main([*arguments, "--textzoom", str(tiny_recipes)]) == 2
    error = capsys.readouterr().err
    assert str(out / "crop1.png") in error and "1 of the 3" in error
    assert (out / "crop1.png").read_bytes() == b"someone else's file"
    assert sorted(path.name for path in out.iterdir()) == ["crop1.png"]
    assert not list((tiny_recipes.parent / "cache").rglob("*.pt"))  # nothing was trained


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda path: path.mkdir() or path, "no images here"),
        (lambda path: path, "neither a folder of images nor a TextZoom split"),
        (lambda path: word_crops(path, sizes=((40, 12),) * 3), None),
    ],
    ids=["empty folder", "missing", "unreadable image"],
)
def test_bad_inputs_are_refused_naming_the_path(tmp_path, make_input, message):
    path = make_input(tmp_path / "input")
    if message is None:  # a crop that is not an image, with an image suffix
        (path / "crop1.jpg").write_bytes(b"not a jpeg")
        with pytest.raises(ValueError, match=r"crop1\.jpg: not a readable image"):
            ImageInputs(path)[1]
        return
    with pytest.raises(FileNotFoundError, match=message):
        ImageInputs(path)


def test_two_images_with_one_stem_are_refused(tmp_path):
    crops = word_crops(tmp_path / "crops")
    random_image(np.random.default_rng(0), (40, 12)).save(crops / "crop0.jpg")
    with pytest.raises(ValueError, match=r"crop0\.jpg.*crop0\.png|crop0\.png.*crop0\.jpg"):
        ImageInputs(crops)


def test_a_split_with_an_unreadable_record_is_named_by_record_index(tmp_path):
    records = raw_records(3, seed=1)
    records[b"image_lr-000000002"] = b"broken"
    split = write_raw_lmdb(tmp_path / "split", records)
    with pytest.warns(UserWarning, match="skipped 1 of 3"):
        inputs = ImageInputs(split, skip_corrupt=True)
    assert inputs.names == ["000000001", "000000003"]
    assert [inputs[i][2] for i in range(2)] == ["w1", "w3"]
    assert inputs[1][0].shape == (3, 16, 64)


def test_read_prints_what_the_pipeline_reads(tiny_cdistnet, tiny_recipes, capsys):
    """The command's readings equal the pipelines' own reading of the same split."""
    from ocrsr_lib.data.textzoom import TextZoomDataset
    from ocrsr_lib.evaluation import read_split
    from ocrsr_lib.pipelines import BeamReader
    from ocrsr_lib.runs import trained

    split = tiny_recipes / "test" / "hard"
    arguments = ["read", "finetune-hr", str(split), "--sr", "stn-edsr", "--beam", "2"]
    assert main([*arguments, "--textzoom", str(tiny_recipes), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    rows = [line.split("\t") for line in captured.out.splitlines()[-5:]]
    assert rows[0] == ["file", "reading", "label"]
    reader = BeamReader(trained(tiny_cdistnet, "finetune-hr").model, 2)
    sr_model = trained(tiny_cdistnet, "stn-edsr").model
    words, labels = read_split(reader, TextZoomDataset(split), sr_model)
    assert rows[1:] == [
        [f"{i:09d}", w, label] for i, (w, label) in enumerate(zip(words, labels, strict=True), 1)
    ]
    assert "word accuracy" in captured.err and "over 4 labelled images" in captured.err


def test_reading_a_folder_reads_bicubic_images_and_reports_no_accuracy(tmp_path):
    class Widths(torch.nn.Module):
        """A stand-in recognizer that 'reads' each image's width and mean brightness."""

        def read(self, images):
            return [f"{image.shape[-1]}:{image.mean():.3f}" for image in images]

    crops = word_crops(tmp_path / "crops")
    readings = read_images(Widths(), ImageInputs(crops), batch_size=2)
    assert [reading.name for reading in readings] == ["crop0", "crop1", "crop2"]
    assert all(reading.word.startswith("128:") and reading.label == "" for reading in readings)
    assert reading_accuracy(readings) is None
