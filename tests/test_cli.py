import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_msrnn import cli, visualize
from tests.conftest import save_tiny_preset

SAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "examples", "data", "moving_mnist_test_0.npy"
)


@pytest.fixture
def tiny_preset(tmp_path):
    """A 64x64 ConvLSTM preset with 3 -> 2 frames, fast on every backend."""
    folder = str(tmp_path / "preset")
    return folder, save_tiny_preset(folder)


def test_predict_writes_npy_gif_and_strip(tiny_preset, tmp_path, capsys):
    folder, model = tiny_preset
    out = str(tmp_path / "out")
    assert cli.main(["predict", folder, SAMPLE, "--output", out]) == 0
    forecast = np.load(os.path.join(out, "forecast.npy"))
    context = np.load(SAMPLE)[:3, :, :, None] / np.float32(255)
    expected = np.clip(
        np.asarray(model.predict(context[None], verbose=0))[0], 0, 1
    )  # forecasts are frames
    np.testing.assert_allclose(forecast, expected, atol=1e-5)
    gif = visualize.load_frames(os.path.join(out, "forecast.gif"), channels=1)
    # context + forecast frames; a 36 px header, truth | forecast panels of 128 px (x2), 4 px gaps
    assert gif.shape == (5, 36 + 128 + 4, 4 + 2 * (128 + 4), 1)
    from PIL import Image

    # 80 px of row labels, then 3 columns of 128 px; 3 rows of 128 px under 16 px of frame numbers
    assert Image.open(os.path.join(out, "forecast.png")).size == (80 + 3 * 132 + 4, 3 * 148 + 4)
    assert "MSE" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["npz", "gif", "png_folder"])
def test_predict_reads_other_input_formats(tiny_preset, tmp_path, kind):
    from PIL import Image

    folder, _ = tiny_preset
    frames = np.load(SAMPLE)[:5]
    if kind == "npz":
        path = str(tmp_path / "frames.npz")
        np.savez(path, frames=frames)
    elif kind == "gif":
        path = str(tmp_path / "frames.gif")
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:])
    else:
        path = str(tmp_path / "pngs")
        os.mkdir(path)
        for index, frame in enumerate(frames):
            Image.fromarray(frame).convert("RGB").save(os.path.join(path, f"{index:03d}.png"))
    np.testing.assert_allclose(
        visualize.load_frames(path, channels=1)[..., 0], frames / 255.0, atol=1e-6
    )
    assert cli.main(["predict", folder, path, "--output", str(tmp_path / "out")]) == 0
    assert np.load(tmp_path / "out" / "forecast.npy").shape == (2, 64, 64, 1)


def test_bad_input_gives_one_line_and_exit_1(tiny_preset, tmp_path, capsys):
    folder, _ = tiny_preset
    np.save(tmp_path / "small.npy", np.zeros((5, 32, 32), np.uint8))
    assert cli.main(["predict", folder, str(tmp_path / "small.npy")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"keras-msrnn predict: {tmp_path / 'small.npy'} has 32x32 frames; preset {folder!r} "
        "expects 64x64."
    )
    np.save(tmp_path / "short.npy", np.zeros((2, 64, 64), np.uint8))
    assert cli.main(["predict", folder, str(tmp_path / "short.npy")]) == 1
    assert "needs 3 context frames" in capsys.readouterr().err
    assert cli.main(["predict", "no-such-preset", SAMPLE]) == 1
    assert "Unknown preset 'no-such-preset'" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("hello")
    assert cli.main(["predict", folder, str(tmp_path / "x.txt")]) == 1
    assert "Unsupported input" in capsys.readouterr().err


def test_evaluate_prints_a_table_and_writes_json(tiny_preset, tmp_path, capsys, shared_data):
    folder, _ = tiny_preset
    output = str(tmp_path / "results.json")
    args = [
        "evaluate",
        folder,
        "moving_mnist",
        "--data-dir",
        str(shared_data / "mnist"),
        "--num-sequences",
        "4",
    ]
    plot = str(tmp_path / "curves.png")
    assert cli.main(args + ["--batch-size", "2", "--output", output, "--plot", plot]) == 0
    from PIL import Image

    assert Image.open(plot).size == (1000, 360)
    printed = capsys.readouterr().out
    assert "future frames" in printed and "(4 sequences)" in printed
    assert "sum over the 4,096 pixel values of a frame" in printed  # MSE's unit
    assert (
        f"results written to {output}" in printed and f"per-frame curves drawn in {plot}" in printed
    )
    results = json.load(open(output))
    # Moving MNIST is not rain: no rain-rate scores in the table or the results.
    assert "csi" not in printed and not [
        name for name in results["future_frames"]["headline"] if "csi" in name
    ]
    assert len(results["future_frames"]["per_frame"]["mse"]) == 2
    assert len(results["all_frames"]["per_frame"]["mse"]) == 4  # S - 1 = 3 + 2 - 1
    assert results["future_frames"]["headline"]["mse"] == pytest.approx(
        np.mean(results["all_frames"]["per_frame"]["mse"][-2:])
    )


def test_list_and_help():
    out = subprocess.run(
        [sys.executable, "-m", "keras_msrnn.cli", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = json.loads(out)
    names = [name for name in listed if "alias_of" not in listed[name]]
    # 64 recipes and 10 OpenSTL imports.
    assert len(names) == 74 and len([n for n in names if n.endswith("-openstl")]) == 10
    assert listed["ms-predrnn-mnist-cpu"]["alias_of"] == "ms-predrnn-mnist"
    commands = ("list", "predict", "evaluate", "train", "recipe", "export", "import-openstl")
    for command in (*commands, "push", "bench"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0


def test_push_refuses_a_folder_that_is_not_a_preset(tmp_path, capsys):
    assert cli.main(["push", str(tmp_path), "hf://org/name"]) == 1
    assert "has no metadata.json" in capsys.readouterr().err


@pytest.mark.large
def test_evaluate_on_radar_fits_the_frames_to_the_model(tiny_preset, capsys, shared_data):
    folder, _ = tiny_preset  # 64x64 frames, 3 -> 2
    args = ["evaluate", folder, "radar_knmi", "--data-dir", str(shared_data / "radar_knmi")]
    assert cli.main(args + ["--num-sequences", "2", "--batch-size", "2"]) == 0
    printed = capsys.readouterr().out
    assert "(2 sequences)" in printed and "csi_0.5" in printed and "fss_0.5" in printed


@pytest.mark.large
def test_every_failure_is_one_line_and_debug_shows_the_traceback(capsys):
    argv = ["bench", "--cell", "convlstm", "--frame", "6", "--filters", "2", "--batch", "1"]
    argv += ["--input-length", "2", "--output-length", "2", "--steps", "1"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert (
        "benchmark worker (convlstm, ms) failed: ValueError: Frame height and width must be "
        "divisible" in err
    )
    with pytest.raises(RuntimeError, match="benchmark worker"):
        cli.main(["--debug", *argv])
