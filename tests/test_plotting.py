import math

import numpy as np
import pytest
import torch

from companion.figures import career_map
from companion.plotting import image_grid, show_images


def test_image_grid_shape_follows_its_docstring():
    grid = image_grid(torch.zeros(4, 1, 8, 8), nrow=2, pad=1)
    rows = math.ceil(4 / 2)
    assert grid.shape == (rows * (8 + 1) + 1, 2 * (8 + 1) + 1)
    assert grid[1:9, 1:9].tolist() == (np.full((8, 8), 0.5)).tolist()  # 0 maps to mid-grey


@pytest.mark.parametrize(
    "images, error",
    [
        ([[0.0]], TypeError),
        (torch.zeros(0, 1, 8, 8), ValueError),
        (torch.full((2, 1, 8, 8), 5.0), ValueError),
        (torch.full((2, 1, 8, 8), float("nan")), ValueError),
        (np.zeros((2, 1, 8, 8), dtype=np.int64), TypeError),
    ],
)
def test_image_grid_refuses_what_it_cannot_draw_faithfully(images, error):
    with pytest.raises(error):
        image_grid(images)


@pytest.mark.parametrize("nrow", [0, 2.5, True])
def test_nrow_must_be_a_positive_int_before_any_figure_is_made(nrow):
    with pytest.raises(ValueError, match="nrow must be an int >= 1"):
        show_images(torch.zeros(2, 1, 8, 8), nrow=nrow)


def test_career_map_draws_three_stages_and_validates_its_input():
    fig = career_map()
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"Beginner", "Intermediate", "Advanced"} <= texts
    with pytest.raises(ValueError, match="each stage must be"):
        career_map([("A", "B", "topics as one string")])


def test_show_images_draws_white_padding_around_dark_ink():
    ax = show_images(torch.full((2, 1, 8, 8), 1.0), nrow=2)  # all ink
    shown = ax.images[0].get_array()
    assert shown[0, 0] == 1.0  # padding: white after the inversion
    assert shown[1, 1] == 0.0  # ink: black


def test_animation_html_has_no_external_stylesheet():
    import matplotlib.pyplot as plt
    from matplotlib import animation

    from companion.plotting import animation_html

    fig, ax = plt.subplots()
    line = ax.plot([0, 1])[0]
    anim = animation.FuncAnimation(fig, lambda k: (line,), frames=2)
    html = animation_html(anim)
    plt.close(fig)
    assert "<script" in html and "font-awesome" not in html and "http" not in html.lower()
    with pytest.raises(TypeError, match="matplotlib Animation"):
        animation_html("not an animation")
