import numpy as np
import pytest
from keras import ops

from keras_msrnn.convert import from_msrnn
from tests.reference_cases import Reference

ARGS = dict(cell="predrnn", multi_scale=True, frame_shape=(16, 16), input_length=4, output_length=4)


@pytest.fixture
def state_dict(reference_dir):
    return dict(Reference(reference_dir, "ms_predrnn").state_dict)


def test_missing_parameter_is_named(state_dict):
    del state_dict["rnns.lstm.3._conv_m2o.bias"]
    with pytest.raises(ValueError, match="has no values for: .*cell_3/conv_m2o/bias"):
        from_msrnn(state_dict, **ARGS)


def test_wrong_shape_is_named(state_dict):
    state_dict["rnns.lstm.2._conv_c2o.weight"] = np.zeros((8, 8, 1, 1), "float32")
    with pytest.raises(
        ValueError, match=r"'rnns.lstm.2._conv_c2o.weight' has shape \(8, 8, 1, 1\)"
    ):
        from_msrnn(state_dict, **ARGS)


def test_unknown_parameter_is_named(state_dict):
    state_dict["rnns.lstm.0._conv_z.weight"] = np.zeros((8, 8, 3, 3), "float32")
    with pytest.raises(ValueError, match="PredRNNCell has no parameter '_conv_z'"):
        from_msrnn(state_dict, **ARGS)


def test_wrong_cell_for_the_checkpoint(state_dict):
    with pytest.raises(
        ValueError,
        match="ConvLSTMCell has no parameter '_conv_c2o'; is the checkpoint's cell 'convlstm'",
    ):
        from_msrnn(state_dict, **dict(ARGS, cell="convlstm"))


def test_explicit_sizes_are_checked(state_dict):
    with pytest.raises(ValueError, match="The checkpoint has filters=8 but filters=16 was given"):
        from_msrnn(state_dict, filters=16, **ARGS)
    with pytest.raises(
        ValueError, match="The checkpoint has kernel_size=3 but kernel_size=5 was given"
    ):
        from_msrnn(state_dict, kernel_size=5, **ARGS)


def test_not_a_checkpoint():
    with pytest.raises(
        ValueError, match="Not an MS-RNN checkpoint: 'embed.conv_embed.weight' is missing"
    ):
        from_msrnn({"conv.weight": np.zeros((1, 1, 1, 1))}, **ARGS)


def test_multi_scale_depth_other_than_six_needs_scales(state_dict):
    shallow = {
        k: v for k, v in state_dict.items() if not k.startswith(("rnns.lstm.4", "rnns.lstm.5"))
    }
    with pytest.raises(ValueError, match="has 4 layers; MS-RNN's scales are defined for 6"):
        from_msrnn(shallow, **ARGS)
    model = from_msrnn(shallow, scales=(1, 2, 2, 1), **ARGS)
    assert model.scales == (1, 2, 2, 1)


def test_frame_shape_is_required(state_dict):
    with pytest.raises(ValueError, match="`frame_shape` must be"):
        from_msrnn(state_dict, **dict(ARGS, frame_shape=None))


def test_torch_tensors_are_accepted(state_dict, reference_dir):
    torch = pytest.importorskip("torch")
    reference = Reference(reference_dir, "ms_predrnn")
    model = from_msrnn({k: torch.from_numpy(v) for k, v in state_dict.items()}, **ARGS)
    np.testing.assert_allclose(
        ops.convert_to_numpy(model.rollout(reference["input_nhwc"])),
        reference["output_test_nhwc"],
        atol=1e-5,
    )
