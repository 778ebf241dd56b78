"""Explanatory figures drawn in code (no data): the career map on the landing page."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# Stage title, years of experience, and the topics the book teaches at that stage.
CAREER_STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Beginner",
        "0-1 year",
        (
            "Probability toolkit",
            "GANs and WGAN-GP",
            "VAEs",
            "LSTM text generator",
            "Transformer and GPT",
        ),
    ),
    (
        "Intermediate",
        "1-3 years",
        (
            "Diffusion (DDPM, DDIM)",
            "Guidance and control",
            "Multimodal alignment",
            "Distributed training",
            "Compression",
        ),
    ),
    (
        "Advanced",
        "3+ years",
        ("Text-to-image systems", "Deployment and serving", "Evaluation", "Safety"),
    ),
)


MAX_STAGES, MAX_TOPICS = 4, 6  # what fits the figure legibly


def _check_stages(stages) -> None:
    if not isinstance(stages, (list, tuple)) or not 1 <= len(stages) <= MAX_STAGES:
        raise ValueError(f"stages must be a list or tuple of 1 to {MAX_STAGES} stages")
    for stage in stages:
        ok = isinstance(stage, (list, tuple)) and len(stage) == 3
        title, years, topics = stage if ok else (None, None, None)
        if not (
            ok
            and isinstance(title, str)
            and isinstance(years, str)
            and isinstance(topics, (list, tuple))
            and 1 <= len(topics) <= MAX_TOPICS
            and all(isinstance(topic, str) for topic in topics)
        ):
            raise ValueError(
                "each stage must be (title: str, years: str, topics: tuple of 1 to "
                f"{MAX_TOPICS} str), got {stage!r}"
            )


def career_map(stages=CAREER_STAGES):
    """Draw the career path as three boxes of topics joined by arrows; return the figure."""
    _check_stages(stages)
    fig, ax = plt.subplots(figsize=(10, 3.4))
    width, gap = 0.3, 0.04
    colours = ("#dbe9f6", "#cfe8d5", "#f6e3c9", "#e8d9f1")
    for i, (title, years, topics) in enumerate(stages):
        left = i * (width + gap) + 0.02
        ax.add_patch(
            FancyBboxPatch(
                (left, 0.05),
                width,
                0.82,
                boxstyle="round,pad=0.01,rounding_size=0.02",
                facecolor=colours[i % len(colours)],
                edgecolor="#555555",
            )
        )
        ax.text(left + width / 2, 0.8, title, ha="center", va="center", weight="bold", size=12)
        ax.text(left + width / 2, 0.71, years, ha="center", va="center", size=10, style="italic")
        for j, topic in enumerate(topics):
            ax.text(left + 0.015, 0.6 - j * 0.11, f"- {topic}", ha="left", va="center", size=8.5)
        if i + 1 < len(stages):
            ax.add_patch(
                FancyArrowPatch(
                    (left + width + 0.005, 0.46),
                    (left + width + gap - 0.005, 0.46),
                    arrowstyle="-|>",
                    mutation_scale=14,
                    color="#333333",
                )
            )
    ax.set_xlim(0, len(stages) * (width + gap) + 0.01)
    ax.set_ylim(0, 0.9)
    ax.set_axis_off()
    return fig
