"""Launched by torchrun in test_reliability: `dlkit train ARGS` where rank 1 alone meets a bad file."""

import os
import sys

from dlkit.errors import UserError

if os.environ.get("RANK") == "1":
    from dlkit_recipes.vision_classification import VisionClassification

    def _bad_data(self, *args, **kwargs):
        raise UserError("'shard-1.csv' row 3: a bad value on rank 1 only", "fix that row")

    VisionClassification.load_data = _bad_data

from dlkit.cli import main  # noqa: E402

sys.argv = ["dlkit", *sys.argv[1:]]
main()
