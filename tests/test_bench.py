import json

import keras
import pytest

from keras_msrnn import MSStack, bench, cli

TINY = [
    "--frame",
    "8",
    "--filters",
    "4",
    "--input-length",
    "2",
    "--output-length",
    "2",
    "--batch",
    "1",
    "--steps",
    "1",
]


def _report(backend, cell, plain, ms):
    return {"backend": backend, "cell": cell, "plain": plain, "ms": ms}


def test_selected_cells():
    assert bench.selected_cells("all") == list(bench.PAPER_ORDER)
    assert bench.selected_cells(" ConvLSTM,predrnn++ ") == ["convlstm", "predrnn++"]
    with pytest.raises(ValueError, match="Unknown cell 'lstm'. Available cells: convlstm, mim"):
        bench.selected_cells("convlstm,lstm")
    with pytest.raises(ValueError, match="names no cell"):
        bench.selected_cells(",")


def test_markdown_table_uses_the_best_memory_figure_a_report_has():
    torch_run = _report(
        "torch",
        "predrnn",
        {
            "step_s": 4.0,
            "step_memory_mb": 800.0,
            "first_step_memory_mb": 900.0,
            "peak_rss_mb": 2000.0,
        },
        {
            "step_s": 2.0,
            "step_memory_mb": 400.0,
            "first_step_memory_mb": 500.0,
            "peak_rss_mb": 1500.0,
        },
    )
    tensorflow_run = _report(
        "tensorflow",
        "mim",
        {"step_s": 3.0, "first_step_memory_mb": 1000.0, "peak_rss_mb": 3000.0},
        {"step_s": 1.5, "first_step_memory_mb": 600.0, "peak_rss_mb": 2400.0},
    )
    jax_cpu_run = _report(
        "jax",
        "convlstm",
        {"step_s": 2.0, "step_memory_mb": 5.0, "first_step_memory_mb": 0.0, "peak_rss_mb": 1000.0},
        {"step_s": 1.0, "step_memory_mb": 3.0, "first_step_memory_mb": 0.0, "peak_rss_mb": 900.0},
    )
    jax_cpu_compiled_run = _report(
        "jax",
        "mim",
        {
            "step_s": 2.0,
            "xla_step_temp_mb": 50.0,
            "first_step_memory_mb": 300.0,
            "peak_rss_mb": 1000.0,
        },
        {
            "step_s": 1.0,
            "xla_step_temp_mb": 20.0,
            "first_step_memory_mb": 400.0,
            "peak_rss_mb": 1100.0,
        },
    )
    gpu_run = _report(
        "jax",
        "trajgru",
        {"step_s": 0.1, "device_peak_mb": 100.0, "first_step_memory_mb": 1.0, "peak_rss_mb": 10.0},
        {"step_s": 0.05, "device_peak_mb": 45.0, "first_step_memory_mb": 1.0, "peak_rss_mb": 10.0},
    )
    header, rule, *rows = bench.markdown_table(
        [torch_run, tensorflow_run, jax_cpu_run, gpu_run, jax_cpu_compiled_run]
    ).splitlines()
    assert header.count("|") == rule.count("|") == 10
    assert rows[0] == (
        "| torch | predrnn | 4.00 s | 2.00 s | **0.500** | 800 MB | 400 MB | **0.500** | 0.750 |"
    )
    assert rows[1] == (
        "| tensorflow | mim | 3.00 s | 1.50 s | **0.500** | 1000 MB | 600 MB | **0.600** | 0.800 |"
    )
    # XLA keeps freed buffers: the first step's growth, and no ratio over nothing.
    assert (
        rows[2]
        == "| jax | convlstm | 2.00 s | 1.00 s | **0.500** | 0 MB | 0 MB | **n/a** | 0.900 |"
    )
    assert "| 100 MB | 45 MB | **0.450** |" in rows[3]
    assert (
        rows[4] == "| jax | mim | 2.00 s | 1.00 s | **0.500** | 50 MB | 20 MB | **0.400** | 1.100 |"
    )


@pytest.mark.large
def test_bench_measures_resumes_and_tabulates(tmp_path, capsys):
    output = str(tmp_path / "bench.jsonl")
    assert cli.main(["bench", "--cell", "convlstm", "--output", output, "--json"] + TINY) == 0
    (report,) = bench.read_reports(output)
    assert json.loads(capsys.readouterr().out) == report
    assert report["backend"] == keras.config.backend()
    assert report["plain"]["scales"] == [1] * 6 and report["ms"]["scales"] == [1, 2, 4, 4, 2, 1]
    # The workers built the requested stack; MS resamples but holds the same weights.
    tiny = MSStack(cell="convlstm", filters=4, scales=(1,) * 6, input_length=2, output_length=2)
    tiny.build((None, 2, 8, 8, 1))
    assert report["plain"]["params"] == report["ms"]["params"] == tiny.count_params()
    for variant in ("plain", "ms"):
        assert report[variant]["step_s"] > 0 and report[variant]["peak_rss_mb"] > 0
    if keras.config.backend() == "jax":
        # XLA's buffer assignment sees the smaller activations of the coarse layers.
        assert 0 < report["ms"]["xla_step_temp_mb"] < report["plain"]["xla_step_temp_mb"]
    else:
        assert "xla_step_temp_mb" not in report["plain"]
    assert report["ms_over_plain"]["step_time"] == pytest.approx(
        report["ms"]["step_s"] / report["plain"]["step_s"], abs=1e-3
    )

    # The same settings again: nothing is measured twice.
    assert cli.main(["bench", "--cell", "convlstm", "--output", output] + TINY) == 0
    assert "convlstm: already in" in capsys.readouterr().err
    assert len(bench.read_reports(output)) == 1

    assert cli.main(["bench", "--table", output]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and table[2].startswith(f"| {keras.config.backend()} | convlstm |")


def test_bench_rejects_zero_steps(capsys):
    assert cli.main(["bench", "--steps", "0"]) == 1
    assert "--warmup and --steps must be at least 1" in capsys.readouterr().err


def test_table_names_a_missing_or_foreign_file(tmp_path, capsys):
    assert cli.main(["bench", "--table", str(tmp_path / "none.jsonl")]) == 1
    assert "none.jsonl" in capsys.readouterr().err
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("\n{not json\n")
    assert cli.main(["bench", "--table", str(garbled)]) == 1
    assert "garbled.jsonl, line 2: not a JSON report" in capsys.readouterr().err
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"loss": 1.0}\n')
    assert cli.main(["bench", "--table", str(foreign)]) == 1
    assert "foreign.jsonl, line 1: not a bench report" in capsys.readouterr().err


@pytest.mark.large
def test_against_reference_times_both_sides_and_tabulates_the_ratio(tmp_path):
    import subprocess
    import sys

    backend = keras.config.backend()
    output = tmp_path / "ref.jsonl"
    command = [sys.executable, "-m", "benchmarks.against_reference", "--cell", "convlstm"]
    command += ["--backends", backend, "--output", str(output)]
    command += [*TINY, "--batch", "2", "--threads", "1"]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    records = [json.loads(line) for line in output.read_text().splitlines()]
    by_key = {(r["implementation"], r["variant"]): r for r in records}
    assert set(by_key) == {(side, v) for side in ("reference", backend) for v in ("plain", "ms")}
    for variant in ("plain", "ms"):
        # Same model on both sides: the parameter counts agree.
        assert by_key[(backend, variant)]["params"] == by_key[("reference", variant)]["params"]
        assert by_key[(backend, variant)]["step_s"] > 0
    # A rerun skips what the file holds.
    again = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    assert again.stdout == ""
    ratio = by_key[(backend, "ms")]["step_s"] / by_key[("reference", "ms")]["step_s"]
    table = subprocess.run(
        [sys.executable, "-m", "benchmarks.against_reference", "--table", str(output)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert f"({ratio:.2f})" in table.splitlines()[3]  # the MS-convlstm row
    # A size the MS stack cannot pool is refused before any worker starts.
    failed = subprocess.run([*command, "--frame", "6"], capture_output=True, text=True)
    assert failed.returncode == 2
    assert "--frame 6 is not divisible by 4" in failed.stderr.strip().splitlines()[-1]
    failed = subprocess.run([*command, "--cell", "convlstm,lstm"], capture_output=True, text=True)
    assert failed.returncode == 2
    assert "unknown cell 'lstm'; cells: convlstm," in failed.stderr.strip().splitlines()[-1]
