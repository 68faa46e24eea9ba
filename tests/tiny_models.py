"""Tiny ONNX gender models for tests: real, computable classifiers following the contract.

``build_gender_onnx`` writes a model whose gender logit is ``gain * (mean pixel - 0.5)`` after the
contract's preprocessing (docs/adr/0001-model-metadata-contract.md), so tests can predict its
outputs exactly; ``tiny_expected_logit`` computes that. A plain module (not conftest) so that test
files can import it unambiguously: ``from tiny_models import tiny_expected_logit``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY_GAIN = 8.0  # logit per unit of mean (preprocessed) pixel value above 0.5
TINY_AGE_SLOPE = 50.0  # age output = 20 + TINY_AGE_SLOPE * mean preprocessed pixel


def build_gender_onnx(
    path: Path,
    *,
    input_size: int = 32,
    output_kind: str = "logit_male",
    metadata: dict[str, str] | None = None,
    contract: bool = True,
    with_age: bool = True,
    input_name: str = "input",
    fixed_batch: int | None = None,
    gain: float = TINY_GAIN,
) -> Path:
    """Write a tiny ONNX gender model whose output is a known function of the mean pixel.

    ``output_kind``: "logit_male" -> one logit ``gain * (m - 0.5)``; "p_male" -> its sigmoid;
    "logits_fm" -> two logits ``[-z/2, z/2]`` (so softmax male = sigmoid(z)). ``contract=False``
    writes a legacy-style model (no contract metadata, 150x150, sigmoid output).
    """
    import onnx
    from onnx import TensorProto, helper

    batch: int | str = fixed_batch if fixed_batch else "N"
    size = input_size
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Sub", ["m", "half"], ["c"]),
        helper.make_node("Mul", ["c", "gain"], ["z"]),
    ]
    inits = [
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
    ]
    nodes[0].input[0] = input_name
    outputs = []
    if output_kind == "logit_male":
        nodes.append(helper.make_node("Identity", ["z"], ["gender_logit"]))
        outputs.append(helper.make_tensor_value_info("gender_logit", TensorProto.FLOAT, [batch]))
    elif output_kind == "p_male":
        nodes.append(helper.make_node("Sigmoid", ["z"], ["p"]))
        nodes.append(helper.make_node("Unsqueeze", ["p", "ax1"], ["p_male"]))
        inits.append(helper.make_tensor("ax1", TensorProto.INT64, [1], [1]))
        outputs.append(helper.make_tensor_value_info("p_male", TensorProto.FLOAT, [batch, 1]))
    elif output_kind == "logits_fm":
        nodes += [
            helper.make_node("Mul", ["z", "halfpos"], ["zm"]),
            helper.make_node("Neg", ["zm"], ["zf"]),
            helper.make_node("Unsqueeze", ["zf", "ax1"], ["zf1"]),
            helper.make_node("Unsqueeze", ["zm", "ax1"], ["zm1"]),
            helper.make_node("Concat", ["zf1", "zm1"], ["logits"], axis=1),
        ]
        inits += [
            helper.make_tensor("halfpos", TensorProto.FLOAT, [], [0.5]),
            helper.make_tensor("ax1", TensorProto.INT64, [1], [1]),
        ]
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 2]))
    else:
        raise ValueError(output_kind)
    if with_age:
        nodes += [
            helper.make_node("Mul", ["m", "age_slope"], ["a0"]),
            helper.make_node("Add", ["a0", "age_base"], ["age"]),
        ]
        inits += [
            helper.make_tensor("age_slope", TensorProto.FLOAT, [], [TINY_AGE_SLOPE]),
            helper.make_tensor("age_base", TensorProto.FLOAT, [], [20.0]),
        ]
        outputs.append(helper.make_tensor_value_info("age", TensorProto.FLOAT, [batch]))
    graph = helper.make_graph(
        nodes,
        "tiny_gender",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, size, size])],
        outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta: dict[str, str] = {}
    if contract:
        meta = {
            "forensic_app.contract": "1",
            "input_size": str(size),
            "color_order": "RGB",
            "scale": str(1 / 255),
            "mean": "0,0,0",
            "std": "1,1,1",
            "gender_output": outputs[0].name,
            "gender_output_kind": output_kind,
            "labels": "female,male",
            "uncertain_band": "0.35,0.65",
            "crop_margin": "0.25",
            "crop_shape": "square",
            "model_name": "tiny_test_gender",
            "model_version": "test",
            "training_data": "none (synthetic test model)",
        }
        if with_age:
            meta["age_output"] = "age"
    meta.update(metadata or {})
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def tiny_expected_logit(crops_rgb: np.ndarray, gain: float = TINY_GAIN) -> np.ndarray:
    """The tiny model's logit for N x S x S x 3 uint8 crops with the default (/255) scaling."""
    m = crops_rgb.reshape(crops_rgb.shape[0], -1).astype(np.float64).mean(axis=1) / 255.0
    return gain * (m - 0.5)
