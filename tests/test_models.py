"""The model registry and the plain-torch models."""

from __future__ import annotations

import pytest
import torch

from emotion.errors import EmotionError
from emotion.models import create_model, list_models, predict_proba


@pytest.mark.parametrize("name", list_models())
def test_forward_shape(name):
    model = create_model(name).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)


@pytest.mark.parametrize("size", [48, 64, 96])
def test_input_sizes(size):
    with torch.no_grad():
        assert create_model("mini_xception").eval()(torch.randn(1, 1, size, size)).shape == (1, 7)


def test_options_pass_through():
    assert create_model("resnet18", num_classes=3, in_chans=3)(torch.randn(2, 3, 48, 48)).shape == (2, 3)


def test_unknown_model_lists_known_ones():
    with pytest.raises(EmotionError, match=r"unknown model 'resnet9000'.*mini_xception.*resnet18.*vgg"):
        create_model("resnet9000")


def test_parameter_counts():
    count = {n: sum(p.numel() for p in create_model(n).parameters()) for n in ("mini_xception", "resnet18")}
    assert 50_000 < count["mini_xception"] < 70_000
    assert 11_000_000 < count["resnet18"] < 11_300_000


@pytest.mark.parametrize("tta", ["none", "flip", "tencrop"])
def test_tta_probabilities(tta):
    model = create_model("mini_xception").eval()
    p = predict_proba(model, torch.randn(4, 1, 48, 48), tta)
    assert p.shape == (4, 7) and torch.allclose(p.sum(1), torch.ones(4), atol=1e-5)


def test_flip_tta_is_flip_invariant():
    model = create_model("mini_xception").eval()
    x = torch.randn(2, 1, 48, 48)
    assert torch.allclose(predict_proba(model, x, "flip"), predict_proba(model, x.flip(-1), "flip"), atol=1e-6)


def test_registry_refuses_a_second_builder_of_the_same_name():
    from emotion.models import register_model

    def vgg(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.0):  # same name as the real one
        return torch.nn.Identity()

    with pytest.raises(ValueError, match="'vgg' is already registered"):
        register_model(vgg)
    assert create_model("vgg").__class__.__name__ == "VGGFace"


def test_ensemble_averages_member_probabilities():
    from emotion.models import Ensemble

    torch.manual_seed(0)
    a, b = create_model("mini_xception").eval(), create_model("vgg_slim").eval()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        small = torch.nn.functional.interpolate(x, size=(40, 40), mode="bilinear", align_corners=False,
                                                antialias=True)
        want = (a(x).softmax(-1) + b(small).softmax(-1)) / 2
        got = predict_proba(Ensemble([a, b], [48, 40]).eval(), x)  # softmax of its log-probabilities
    assert torch.allclose(got, want, atol=1e-5)
