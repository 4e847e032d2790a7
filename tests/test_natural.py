"""Non-text pretraining pairs."""

import numpy as np
import pytest
import torch

from ocrsr_lib.data.natural import NaturalImagePairs, bundled_images, dead_leaves


def test_pairs_are_deterministic_with_textzoom_sizes():
    pairs = NaturalImagePairs(count=20, seed=1)
    lr, hr, label = pairs[7]
    assert lr.shape == (3, 16, 64) and hr.shape == (3, 32, 128) and label == ""
    assert 0 <= hr.min() and hr.max() <= 1
    again = NaturalImagePairs(count=20, seed=1)[7]
    assert torch.equal(hr, again[1]) and torch.equal(lr, again[0])
    assert not torch.equal(hr, NaturalImagePairs(count=20, seed=2)[7][1])
    with pytest.raises(IndexError):
        pairs[20]


def test_lr_is_the_hr_downsampled():
    lr, hr, _ = NaturalImagePairs(count=5)[3]
    pooled = torch.nn.functional.avg_pool2d(hr[None], 2)[0]
    assert (lr - pooled).abs().mean() < 0.03


def test_both_sources_are_used_and_images_are_not_flat():
    images = bundled_images()
    assert len(images) == 3 and all(min(i.size) >= 90 for i in images)
    leaves = np.asarray(dead_leaves(np.random.default_rng(0), (64, 256)))
    assert len(np.unique(leaves.reshape(-1, 3), axis=0)) > 20
    stds = [NaturalImagePairs(count=40)[i][1].std().item() for i in range(40)]
    assert min(stds) > 0.02
