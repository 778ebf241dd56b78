"""Scoring image generators on the 8x8 digits: classifier, FDD, coverage, memorisation.

The protocol is derived and motivated in the chapter ``measuring-generative-models``:

* FDD (Frechet Digits Distance) is the Frechet distance between Gaussians fitted to the
  penultimate-layer features of a small digit classifier, our analogue of FID.
* Generated samples are always compared with the held-out test split, never the training
  split, and with exactly as many samples as the test split has (``N_TEST``), because the
  Frechet distance estimated from a finite sample is biased by its size.
* The floor is measured the same way: random training subsets of ``N_TEST`` images against
  the test split, averaged over seeds.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from companion.data.digits import N_TEST, check_images, load_digits
from companion.device import as_device, seed_everything
from companion.progress import tqdm

N_CLASSES = 10
_LABEL_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _is_int(value) -> bool:
    """An int, Python or NumPy, but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_finite_number(value) -> bool:
    """A finite real number, Python or NumPy, but not a bool."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    return real and math.isfinite(value)


class DigitClassifier(nn.Module):
    """A small CNN for ``(N, 1, 8, 8)`` digits; ``features`` gives the FDD embedding."""

    def __init__(self, width: int = 32, feature_dim: int = 64):
        super().__init__()
        for name, value in (("width", width), ("feature_dim", feature_dim)):
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),  # (N, w, 8, 8)
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),  # (N, 2w, 8, 8)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 2w, 4, 4)
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),  # (N, 2w, 4, 4)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 2w, 2, 2)
            nn.Flatten(),  # (N, 8w)
            nn.Linear(8 * width, feature_dim),  # (N, feature_dim)
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, N_CLASSES)  # (N, 10) logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class ClassifierConfig:
    width: int = 32  # channels of the first convolution; later layers use 2x
    feature_dim: int = 64  # size of the FDD feature space; small so 450 samples fit it
    epochs: int = 30  # full passes over the 1,347 training images
    batch_size: int = 64
    lr: float = 2e-3  # Adam step size
    weight_decay: float = 1e-4  # a little L2 keeps features smooth for generated images
    seed: int = 0

    def __post_init__(self):  # NumPy scalars are stored as the equal Python int / float
        for name in ("width", "feature_dim", "epochs", "batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            setattr(self, name, int(value))
        if not _is_finite_number(self.lr) or not self.lr > 0:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not _is_finite_number(self.weight_decay) or not self.weight_decay >= 0:
            raise ValueError(
                f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}"
            )
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative int below 2**63, got {self.seed!r}")
        self.lr, self.weight_decay = float(self.lr), float(self.weight_decay)
        self.seed = int(self.seed)


def frechet_distance(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray
) -> float:
    """Frechet (2-Wasserstein) distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``.

    ``d^2 = |mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr((cov1^{1/2} cov2 cov1^{1/2})^{1/2})``.
    The matrix square roots are taken with symmetric eigendecompositions in float64;
    eigenvalues that round-off pushes slightly below zero are set to zero, since a
    covariance matrix has none. Inputs that are not covariance matrices (asymmetric, or
    with clearly negative eigenvalues), non-finite or complex raise an error instead.
    """
    mu1, mu2 = _real_array(mu1, "mu1"), _real_array(mu2, "mu2")
    cov1, cov2 = _real_array(cov1, "cov1"), _real_array(cov2, "cov2")
    if mu1.ndim != 1 or mu1.shape[0] < 1:
        raise ValueError(f"mu1 must have shape (D,) with D >= 1, got {mu1.shape}")
    d = mu1.shape[0]
    if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            "expected mu1, mu2 of shape (D,) and cov1, cov2 of shape (D, D); got "
            f"{mu1.shape}, {mu2.shape}, {cov1.shape}, {cov2.shape}"
        )
    for name, cov in (("cov1", cov1), ("cov2", cov2)):
        scale = max(np.abs(cov).max(), 1e-300)
        if np.abs(cov - cov.T).max() > 1e-8 * scale:
            raise ValueError(f"{name} must be symmetric (a covariance matrix)")
        if np.linalg.eigvalsh(cov).min() < -1e-8 * scale:
            raise ValueError(f"{name} must be positive semi-definite (a covariance matrix)")

    def _psd_sqrt(m: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh((m + m.T) / 2)
        return (v * np.sqrt(np.maximum(w, 0.0))) @ v.T

    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_cross = np.sqrt(np.maximum(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0)).sum()
    value = ((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_cross
    return float(max(value, 0.0))


def _real_array(values, name: str) -> np.ndarray:
    """``values`` (NumPy or torch) as a finite float64 array; complex or NaN is an error."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of features ``(N, D)``, N >= 2."""
    features = _real_array(features, "features")
    if features.ndim != 2 or features.shape[0] < 2 or features.shape[1] < 1:
        raise ValueError(
            f"features must have shape (N, D) with N >= 2 and D >= 1, got {features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


@dataclass
class FloorEstimate:
    mean: float
    std: float
    values: list[float]


@dataclass
class CoverageReport:
    counts: list[int]  # predicted samples per class, index = digit
    min_count: int  # a class counts as covered with at least this many samples

    @property
    def covered(self) -> int:
        return sum(c >= self.min_count for c in self.counts)


@dataclass
class MemorisationReport:
    sample_nn: np.ndarray  # (N,) pixel-space L2 distance of each sample to its nearest train image
    test_nn: np.ndarray  # (N_TEST,) the same for each held-out test image
    exact_copies: int  # samples within 1e-3 of a training image

    @property
    def test_p5(self) -> float:
        return float(np.percentile(self.test_nn, 5))

    @property
    def share_below_test_p5(self) -> float:
        """Share of samples nearer to the training set than 95% of test images are.

        Fresh data scores about 0.05. A generator that copies training images scores
        far higher.
        """
        return float((self.sample_nn < self.test_p5).mean())

    @property
    def looks_memorised(self) -> bool:
        # Four times the rate of fresh data, or any verbatim copy, is treated as a sign.
        return self.share_below_test_p5 > 0.20 or self.exact_copies > 0


class DigitsEvaluator:
    """A trained digit classifier plus the held-out test split it scores against."""

    def __init__(self, classifier: DigitClassifier, device: torch.device | str = "cpu"):
        if not isinstance(classifier, DigitClassifier):
            raise TypeError(
                f"classifier must be a DigitClassifier, got {type(classifier).__name__}"
            )
        self.device = as_device(device)
        self.classifier = classifier.to(self.device).eval()
        self.test_images, self.test_labels = load_digits("test", device=self.device)
        self.train_images, self.train_labels = load_digits("train", device=self.device)
        self._test_stats = gaussian_stats(self.features(self.test_images))
        self.test_accuracy = self.accuracy(self.test_images, self.test_labels)

    @classmethod
    def train(
        cls,
        device: torch.device | str = "cpu",
        config: ClassifierConfig | None = None,
        progress: bool = True,
    ) -> DigitsEvaluator:
        """Train the classifier on the training split and return an evaluator."""
        config = ClassifierConfig() if config is None else config
        if not isinstance(config, ClassifierConfig):
            raise TypeError(f"config must be a ClassifierConfig, got {type(config).__name__}")
        device = as_device(device)
        generator = seed_everything(config.seed)
        model = DigitClassifier(config.width, config.feature_dim).to(device)
        x, y = load_digits("train", device=device)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        n = x.shape[0]
        for _ in tqdm(range(config.epochs), desc="digit classifier", disable=not progress):
            model.train()
            order = torch.randperm(n, generator=generator).to(device)
            for start in range(0, n, config.batch_size):
                idx = order[start : start + config.batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return cls(model, device)

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Classifier features ``(N, feature_dim)`` as float64 NumPy."""
        check_images(images)
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        images = images.to(self.device, torch.float32)  # the classifier's dtype
        out = [
            self.classifier.features(images[i : i + batch_size]).double().cpu()
            for i in range(0, images.shape[0], batch_size)
        ]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted digit ``(N,)`` int64 for images ``(N, 1, 8, 8)`` in [-1, 1]."""
        check_images(images)
        return self.classifier(images.to(self.device, torch.float32)).argmax(dim=1).cpu()

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of ``images`` whose predicted digit equals ``labels`` (int64 ``(N,)``, 0-9)."""
        check_images(images)
        if not isinstance(labels, torch.Tensor) or labels.dtype not in _LABEL_DTYPES:
            raise TypeError("labels must be an integer torch.Tensor of digits 0-9 (not bool)")
        if labels.numel() and (labels.min() < 0 or labels.max() >= N_CLASSES):
            raise ValueError("labels must be digits 0-9")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
        return (self.predict(images) == labels.cpu()).float().mean().item()

    def fdd(self, samples: torch.Tensor) -> float:
        """FDD of ``samples`` against the held-out test split.

        ``samples`` must hold exactly ``N_TEST`` (450) images, as many as the test split:
        the estimate is biased by sample size, so unequal sizes would not compare.
        """
        check_images(samples, "samples")
        if samples.shape[0] != N_TEST:
            raise ValueError(
                f"FDD compares equal-size sets: pass exactly {N_TEST} samples "
                f"(the size of the test split), got {samples.shape[0]}"
            )
        mu, cov = gaussian_stats(self.features(samples))
        return frechet_distance(mu, cov, *self._test_stats)

    def floor(self, seeds: int = 5) -> FloorEstimate:
        """FDD of ``seeds`` random training subsets of ``N_TEST`` images: the best to hope for."""
        if not _is_int(seeds) or seeds < 2:
            raise ValueError(f"seeds must be an int >= 2 to estimate a spread, got {seeds!r}")
        values = []
        for seed in range(int(seeds)):
            g = torch.Generator().manual_seed(seed)
            idx = torch.randperm(self.train_images.shape[0], generator=g)[:N_TEST]
            values.append(self.fdd(self.train_images[idx.to(self.device)]))
        return FloorEstimate(float(np.mean(values)), float(np.std(values, ddof=1)), values)

    def ceiling(self, seed: int = 0) -> float:
        """FDD of uniform noise in [-1, 1]: what no learning at all scores."""
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        g = torch.Generator().manual_seed(int(seed))
        return self.fdd(torch.rand((N_TEST, 1, 8, 8), generator=g) * 2 - 1)

    def coverage(self, samples: torch.Tensor, min_share: float = 0.01) -> CoverageReport:
        """Classes predicted for at least ``min_share`` of the samples (and at least one)."""
        if not _is_finite_number(min_share) or not 0 < min_share < 1:
            raise ValueError(f"min_share must lie in (0, 1), got {min_share!r}")
        pred = self.predict(samples)
        counts = torch.bincount(pred, minlength=N_CLASSES).tolist()
        return CoverageReport(counts, max(1, math.ceil(float(min_share) * pred.shape[0])))

    @torch.no_grad()
    def memorisation(self, samples: torch.Tensor) -> MemorisationReport:
        """Nearest-training-image distances of the samples, next to those of test images."""
        check_images(samples, "samples")
        train = self.train_images.flatten(1).cpu().double()  # (N_train, 64)

        def nearest(x: torch.Tensor) -> np.ndarray:
            return torch.cdist(x.flatten(1).cpu().double(), train).min(dim=1).values.numpy()

        sample_nn = nearest(samples)
        return MemorisationReport(
            sample_nn=sample_nn,
            test_nn=nearest(self.test_images),
            exact_copies=int((sample_nn < 1e-3).sum()),
        )
