"""One-off: rename cached checkpoints keyed by the synthetic TextZoom's absolute path (before
shipped weights) to the portable keys (its folder name). Dry run unless --apply.

    OCRSR_CACHE=... python migrate_cache_keys.py demo [--apply]
"""

import sys

from ocrsr_lib.config import setup
from ocrsr_lib.data import synthetic_textzoom_root
from ocrsr_lib.runs import core
from ocrsr_lib.runs import data as run_data
from ocrsr_lib.shipping import recipe_names


def old_identity(session):
    synthetic = session.profile.synthetic
    return str(
        synthetic_textzoom_root(
            session.cache.root, synthetic.train_pairs, synthetic.test_pairs, synthetic.seed
        )
    )


profile, apply = sys.argv[1], "--apply" in sys.argv
session = setup(profile, device="cpu", verbose=False)
names = recipe_names(session)
new = {name: core.checkpoint_path(session, name) for name in names}
portable = run_data.textzoom_identity
run_data.textzoom_identity = old_identity
old = {name: core.checkpoint_path(session, name) for name in names}
run_data.textzoom_identity = portable
for name in names:
    if old[name] == new[name] or not old[name].exists():
        continue
    if new[name].exists():
        print(f"{name}: both {old[name].name} and {new[name].name} exist; left alone")
        continue
    print(f"{name}: {old[name].name} -> {new[name].name}")
    if apply:
        old[name].rename(new[name])
        skipped = old[name].with_suffix(".skipped.txt")
        if skipped.exists():
            skipped.rename(new[name].with_suffix(".skipped.txt"))
