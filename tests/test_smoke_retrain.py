"""The training code behind the shipped weights stays covered: one chain of the demo recipes at
the smoke profile's hundredth of their steps (SR pretraining, the guide, text-focus training,
CDistNet pretraining and fine-tuning on SR images) trains from scratch with shipped weights
ignored, and what it trained loads back from the cache unchanged."""

from __future__ import annotations

import math

import pytest
import torch

from ocrsr_lib import runs
from ocrsr_lib.config import setup

# the chains that reach every family: sr (edsr-natural, stn-edsr, stn-edsr-text-focus), guide,
# cdistnet (pretrain, finetune-stn-edsr-text-focus) and joint (both parts in one stage)
LAST_RUNS = ["finetune-stn-edsr-text-focus", "joint-stn-edsr-text-focus"]


@pytest.fixture(scope="module")
def smoke_session(tmp_path_factory):
    cache = tmp_path_factory.mktemp("smoke-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OCRSR_CACHE", str(cache))
        for variable in ("OCRSR_PROFILE", "OCRSR_OFFICIAL", "OCRSR_RETRAIN"):
            patch.delenv(variable, raising=False)
        session = setup("smoke", device="cpu", retrain=True, verbose=False)
        yield session


def test_every_family_retrains_on_the_smoke_profile_and_loads_back_unchanged(smoke_session):
    session = smoke_session
    chain = runs.needed_runs(session, LAST_RUNS)
    families = {runs.recipe_for(session, name).model for name in chain}
    assert {"stn-edsr", "guide", "cdistnet", "joint"} <= families, families
    for name in chain:
        run = runs.trained(session, name)
        recipe = runs.recipe_for(session, name)
        assert run.source == "trained", name
        assert run.result.steps == recipe.train.steps and len(run.result.losses) == run.result.steps
        assert all(math.isfinite(loss) for loss in run.result.losses), name
        assert (
            run.checkpoint.is_file() and run.checkpoint.parent == session.cache.root / "checkpoints"
        )
        again = runs.trained(session, name)
        assert again.source == "cache" and again.key == run.key
        for (key, tensor), other in zip(
            run.model.state_dict().items(), again.model.state_dict().values(), strict=True
        ):
            assert torch.equal(tensor, other), (name, key)
