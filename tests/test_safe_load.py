"""Reading torch files without running their code."""

import pickle

import pytest
import torch

from evoprune_sklearn._safe_load import safe_load


class _Payload:
    """Unpickling this would run code; weights_only refuses it."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_tensors_and_containers_load_onto_the_cpu(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"w": torch.ones(2, 3), "meta": {"n": 3, "name": "x"}}, path)
    out = safe_load(str(path), "weights file", "a tensor state_dict")
    assert out["w"].device.type == "cpu" and out["meta"] == {"n": 3, "name": "x"}
    torch.testing.assert_close(out["w"], torch.ones(2, 3))


def test_a_file_that_needs_code_is_refused_naming_the_file(tmp_path, capsys):
    path = tmp_path / "hostile.pt"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(ValueError, match=r"weights file '.*hostile.pt' could not be read "
                                         r"as a tensor state_dict \(") as info:
        safe_load(str(path), "weights file", "a tensor state_dict")
    assert "code ran" not in capsys.readouterr().out
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)


def test_garbage_and_a_missing_file_give_one_error_type_with_the_advice(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"checkpoint file .* could not be read as a "
                                         r"checkpoint .*\. Delete it\.$"):
        safe_load(str(garbage), "checkpoint file", "a checkpoint", "Delete it.")
    with pytest.raises(ValueError, match="could not be read"):
        safe_load(str(tmp_path / "missing.pt"), "weights file", "a tensor state_dict")
