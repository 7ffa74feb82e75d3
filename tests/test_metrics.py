import json

import numpy as np
import pytest

from keras_msrnn import metrics

PAIRS = range(4)
CONVENTIONS = ("dwd", "hko")
# The reference SSIM runs scipy's FFT in float32 (errors ~3e-7), so values
# near zero are compared with an absolute floor too.
SSIM_ATOL = 1e-6


@pytest.fixture(scope="module")
def goldens():
    from tests.conftest import REFERENCE_DIR

    return np.load(REFERENCE_DIR / "metrics.npz"), json.loads(
        (REFERENCE_DIR / "metrics.json").read_text()
    )


def _pair(goldens, index):
    data, _ = goldens
    return data[f"pair{index}/pred_nhwc"], data[f"pair{index}/truth_nhwc"]


def _per_sample(goldens, index, key):
    """Reference (S, B, ...) arrays in our (B, S, ...) order."""
    return np.swapaxes(goldens[0][f"pair{index}/{key}"], 0, 1)


@pytest.mark.parametrize("index", PAIRS)
def test_per_frame_metrics_match_reference(goldens, index):
    prediction, truth = _pair(goldens, index)
    np.testing.assert_allclose(
        metrics.frame_mse(truth, prediction), _per_sample(goldens, index, "mse"), rtol=1e-5
    )
    np.testing.assert_allclose(
        metrics.frame_mae(truth, prediction), _per_sample(goldens, index, "mae"), rtol=1e-5
    )
    np.testing.assert_allclose(
        metrics.psnr(truth, prediction), _per_sample(goldens, index, "psnr"), rtol=1e-5
    )
    np.testing.assert_allclose(
        metrics.gradient_difference(truth, prediction),
        _per_sample(goldens, index, "gdl"),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        metrics.ssim(truth, prediction),
        _per_sample(goldens, index, "ssim"),
        rtol=1e-5,
        atol=SSIM_ATOL,
    )


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("index", PAIRS)
def test_radar_metrics_match_reference(goldens, index, convention):
    data, reference = goldens
    prediction, truth = _pair(goldens, index)
    np.testing.assert_allclose(
        metrics.pixel_thresholds(convention),
        reference["conventions"][convention]["pixel_thresholds"],
        rtol=1e-12,
    )
    weights = np.moveaxis(data[f"pair{index}/{convention}/balancing_weights"], (0, 1, 2), (1, 0, 4))
    np.testing.assert_array_equal(metrics.balancing_weights(truth, convention), weights)
    for name, function in (("b_mse", metrics.balanced_mse), ("b_mae", metrics.balanced_mae)):
        np.testing.assert_allclose(
            function(truth, prediction, convention),
            _per_sample(goldens, index, f"{convention}/{name}"),
            rtol=1e-5,
        )
    counts = metrics.contingency_counts(truth, prediction, convention)
    for got, name in zip(counts, ("hits", "misses", "false_alarms", "correct_negatives")):
        np.testing.assert_array_equal(got, _per_sample(goldens, index, f"{convention}/{name}"))


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("index", PAIRS)
def test_evaluation_reproduces_reference_curves_and_headline(goldens, index, convention):
    data, reference = goldens
    prediction, truth = _pair(goldens, index)
    evaluation = metrics.ForecastEvaluation(convention)
    # Two updates must accumulate like one.
    evaluation.update(truth[:1], prediction[:1])
    if len(prediction) > 1:
        evaluation.update(truth[1:], prediction[1:])
    results = evaluation.results()
    for name in ("ssim", "psnr", "gdl", "b_mse", "b_mae", "mse", "mae", "pod", "far", "csi", "hss"):
        expected = data[f"pair{index}/{convention}/eval/{name}"]
        np.testing.assert_allclose(
            np.array(results["per_frame"][name], dtype=np.float64),
            expected,
            rtol=1e-5,
            atol=SSIM_ATOL,
            err_msg=name,
        )
    order = reference["headline_vector_order"]
    headline = [results["headline"][key] for key in order]
    np.testing.assert_allclose(
        headline, data[f"pair{index}/{convention}/headline_vector"], rtol=1e-5, atol=SSIM_ATOL
    )


def test_future_only_slice_differs_from_all_frames(goldens):
    prediction, truth = _pair(goldens, 0)
    evaluation = metrics.ForecastEvaluation()
    evaluation.update(truth, prediction)
    future = evaluation.results(frames=slice(-3, None))
    assert len(future["per_frame"]["mse"]) == 3
    np.testing.assert_allclose(
        future["per_frame"]["mse"], evaluation.results()["per_frame"]["mse"][-3:]
    )


def test_openstl_ssim_matches_skimage_formula():
    # skimage.metrics.structural_similarity(a, b, data_range=2, channel_axis=-1)
    # on this constant-offset pair has the closed form below.
    truth = np.random.default_rng(0).random((1, 1, 9, 9, 1)).astype(np.float32)
    assert metrics.ssim(truth, truth, "openstl")[0, 0] == pytest.approx(1.0)
    shifted = truth + 0.1
    c1 = (0.01 * 2) ** 2
    mu = np.lib.stride_tricks.sliding_window_view(truth[0, 0, :, :, 0], (7, 7)).mean(axis=(-1, -2))
    expected = np.mean((2 * mu * (mu + 0.1) + c1) / (mu**2 + (mu + 0.1) ** 2 + c1))
    assert metrics.ssim(truth, shifted, "openstl")[0, 0] == pytest.approx(expected, rel=1e-6)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="y_true and y_pred"):
        metrics.frame_mse(np.zeros((1, 2, 4, 4, 1)), np.zeros((1, 3, 4, 4, 1)))
    with pytest.raises(ValueError, match="convention"):
        metrics.ssim(np.zeros((1, 1, 8, 8, 1)), np.zeros((1, 1, 8, 8, 1)), convention="skimage")
    with pytest.raises(ValueError, match="convention"):
        metrics.rain_to_pixel(1.0, "knmi")
    with pytest.raises(ValueError, match="No forecasts"):
        metrics.ForecastEvaluation().results()


def test_keras_metrics_agree_with_numpy(goldens):
    prediction, truth = _pair(goldens, 2)  # 8x10 frames: the SSIM window shrinks
    expected = {
        "frame_mse": metrics.frame_mse(truth, prediction).mean(),
        "frame_mae": metrics.frame_mae(truth, prediction).mean(),
        "psnr": metrics.psnr(truth, prediction).mean(),
        "ssim": metrics.ssim(truth, prediction).mean(),
    }
    for metric in (metrics.FrameMSE(), metrics.FrameMAE(), metrics.PSNR(), metrics.SSIM()):
        metric.update_state(truth[:1], prediction[:1])
        metric.update_state(truth[1:], prediction[1:])
        assert float(metric.result()) == pytest.approx(expected[metric.name], rel=1e-5)
    rng = np.random.default_rng(1)
    frames = rng.random((2, 2, 9, 9, 2)).astype(np.float32)
    noisy = np.clip(frames + 0.1 * rng.standard_normal(frames.shape), 0, 1).astype(np.float32)
    openstl = metrics.SSIM("openstl")
    openstl.update_state(frames, noisy)
    assert float(openstl.result()) == pytest.approx(
        metrics.ssim(frames, noisy, "openstl").mean(), rel=1e-5
    )


def test_csi_metric_counts_over_batches(goldens):
    data, _ = goldens
    prediction, truth = _pair(goldens, 0)
    metric = metrics.CriticalSuccessIndex(threshold=2.0, convention="dwd")
    for sample in range(len(truth)):
        metric.update_state(truth[sample : sample + 1], prediction[sample : sample + 1])
    hits, misses, false_alarms, _ = metrics.contingency_counts(truth, prediction, "dwd")
    tp, fn, fp = hits[..., 1].sum(), misses[..., 1].sum(), false_alarms[..., 1].sum()
    assert float(metric.result()) == pytest.approx(tp / (tp + fn + fp), rel=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_keras_metrics_honour_sample_weight():
    rng = np.random.default_rng(1)
    truth = rng.random((2, 3, 8, 8, 1)).astype("float32")
    prediction = np.clip(truth + rng.normal(0, 0.2, truth.shape), 0, 1).astype("float32")
    for metric, per_frame in (
        (metrics.FrameMSE(), metrics.frame_mse),
        (metrics.FrameMAE(), metrics.frame_mae),
        (metrics.PSNR(), metrics.psnr),
        (metrics.SSIM(), metrics.ssim),
    ):
        metric.update_state(truth, prediction, sample_weight=[0.0, 1.0])
        assert float(metric.result()) == pytest.approx(
            per_frame(truth[1:], prediction[1:]).mean(), rel=1e-5
        )
        metric.reset_state()
        frame_weights = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
        metric.update_state(truth, prediction, sample_weight=frame_weights)
        values = per_frame(truth, prediction)
        expected = (values[0, 0] + 2 * values[1, 2]) / 3
        assert float(metric.result()) == pytest.approx(expected, rel=1e-5), metric.name
    csi = metrics.CriticalSuccessIndex(0.5, "dwd")
    csi.update_state(truth, prediction, sample_weight=[0.0, 1.0])
    only_second = metrics.CriticalSuccessIndex(0.5, "dwd")
    only_second.update_state(truth[1:], prediction[1:])
    assert float(csi.result()) == pytest.approx(float(only_second.result()), rel=1e-6)


def test_fractions_skill_score():
    rain = np.zeros((1, 1, 20, 20, 1), "float32")
    rain[0, 0, 8:12, 8:12] = 0.9
    assert np.all(metrics.fss(rain, rain)[..., :3] == 1.0)  # perfect where it rains
    shifted = np.roll(rain, 2, axis=3)
    far = np.roll(rain, 9, axis=3)
    near_score, far_score = metrics.fss(rain, shifted)[0, 0, 0], metrics.fss(rain, far)[0, 0, 0]
    assert 0 <= far_score < near_score < 1  # a near miss scores better than a far one
    assert far_score == pytest.approx(0.0)  # no overlap of 5x5 fractions 9 px away
    # By hand, one rain pixel moved by 1: F and O are 1/25 on 5x5 boxes that share 4x5 cells.
    one, moved = np.zeros((1, 1, 9, 9, 1)), np.zeros((1, 1, 9, 9, 1))
    one[0, 0, 4, 4], moved[0, 0, 4, 5] = 0.9, 0.9
    expected = 1 - (10 / 625) / (50 / 625)
    assert metrics.fss(one, moved)[0, 0, 0] == pytest.approx(expected)
