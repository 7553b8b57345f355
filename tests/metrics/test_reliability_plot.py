"""ReliabilityDisplay draws the data it holds, on a new figure or on given axes."""

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from synthaug.metrics import ReliabilityDisplay, reliability_diagram


def test_from_predictions_draws_one_bar_per_occupied_bin(tmp_path, predictions):
    probs, labels = predictions
    display = ReliabilityDisplay.from_predictions(probs, labels, n_bins=10, name="model")
    diagram = display.diagram
    occupied = diagram.bin_count > 0
    accuracy_bars, gap_bars = display.ax_.containers
    np.testing.assert_allclose([bar.get_height() for bar in accuracy_bars], diagram.bin_accuracy[occupied])
    np.testing.assert_allclose(
        [bar.get_y() + bar.get_height() for bar in gap_bars], diagram.bin_confidence[occupied]
    )
    (histogram,) = display.histogram_ax_.patches
    fractions, edges, _ = histogram.get_data()
    np.testing.assert_allclose(fractions, diagram.bin_count / labels.shape[0])
    np.testing.assert_allclose(edges, diagram.bin_edges)
    assert f"{diagram.expected_calibration_error:.4f}" in display.ax_.get_title()
    assert display.ax_.get_title().startswith("model:")

    path = tmp_path / "reliability.png"
    display.figure_.savefig(path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_plot_uses_the_given_axes_and_quantile_bin_widths(predictions):
    probs, labels = predictions
    ax = Figure().add_subplot()
    diagram = reliability_diagram(probs, labels, n_bins=5, strategy="quantile")
    display = ReliabilityDisplay(diagram).plot(ax=ax)
    assert display.ax_ is ax and display.figure_ is ax.figure
    widths = [bar.get_width() for bar in ax.containers[0]]
    np.testing.assert_allclose(widths, np.diff(diagram.bin_edges)[diagram.bin_count > 0])
