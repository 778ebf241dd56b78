"""The FDD scale on digits: classifier accuracy, floor and ceiling (chapter ``measuring``)."""

from __future__ import annotations

import torch

from companion.evaluate import DigitsEvaluator

MIN_ACCURACY = 0.97


def run(device: torch.device) -> dict:
    evaluator = DigitsEvaluator.train(device, progress=False)
    floor = evaluator.floor(seeds=5)
    return {
        "classifier_test_accuracy": round(evaluator.test_accuracy, 4),
        "fdd_floor_mean": round(floor.mean, 2),
        "fdd_floor_std": round(floor.std, 2),
        "fdd_ceiling_uniform_noise": round(evaluator.ceiling(), 1),
        "targets": {
            f"classifier accuracy >= {MIN_ACCURACY}": evaluator.test_accuracy >= MIN_ACCURACY
        },
    }
