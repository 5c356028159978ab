"""The report's figures: legends inside the saved image whatever the number of optimizers, one thin line per
seed, the seeds in the legend, no protocol hash in titles, colours that tell variants apart."""
import struct

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from pinnbench.report import build, build_report
from pinnbench.report.curves import SAVE_OPTIONS, line_styles, plot_bands, save_figure, seed_bands, seed_lines
from report_synthetic import EIGHT, IDENTITY, zoo


def saved_extent(figure, renderer):
    """The part of the figure that ``savefig(**SAVE_OPTIONS)`` writes, in display pixels (as matplotlib does)."""
    if SAVE_OPTIONS.get("bbox_inches") == "tight":
        box = figure.get_tightbbox(renderer).padded(SAVE_OPTIONS.get("pad_inches", 0.1))
    else:
        box = figure.bbox_inches
    return box.transformed(figure.dpi_scale_trans)


def png_size(path):
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def legend_boxes(figure, renderer):
    """(label, window extent) of every legend text and handle of the figure."""
    boxes = []
    for legend in figure.legends:
        for text, handle in zip(legend.get_texts(), legend.legend_handles):
            boxes += [(text.get_text(), text.get_window_extent(renderer)),
                      (text.get_text(), handle.get_window_extent(renderer))]
    return boxes


@pytest.mark.parametrize("problems", [("heat",), ("heat", "laplace2d", "burgers", "allen_cahn")])
def test_every_legend_entry_lies_inside_the_saved_figure(tmp_path, problems):
    runs, trajectory = zoo(problems=problems)
    figure = plot_bands(seed_bands(trajectory), "l2_abs", "time", "Absolute RMS error vs optimizer time",
                        lines=seed_lines(trajectory))
    png, _ = save_figure(figure, tmp_path / "figure")
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    extent = saved_extent(figure, renderer)
    boxes = legend_boxes(figure, renderer)
    assert sorted(label for label, _ in boxes[::2]) == sorted(f"{o} (n=3)" for o in EIGHT)
    for label, box in boxes:
        assert (extent.x0 - 0.5 <= box.x0 and box.x1 <= extent.x1 + 0.5
                and extent.y0 - 0.5 <= box.y0 and box.y1 <= extent.y1 + 0.5), (label, box, extent)
    scale = 150 / figure.dpi  # the PNG is written at 150 dpi: the same extent, so the same logic as saving
    width, height = png_size(png)
    assert abs(width - extent.width * scale) <= 2 and abs(height - extent.height * scale) <= 2


def test_one_thin_line_per_seed_under_the_median():
    runs, trajectory = zoo(labels=("anagram", "adam"), problems=("heat", "laplace2d"), seeds=(1, 2, 3, 4))
    keep = ~((trajectory["optimizer"] == "adam") & (trajectory["problem"] == "laplace2d")
             & (trajectory["seed"] == 4))  # adam has 3 seeds on laplace2d, 4 on heat
    figure = plot_bands(seed_bands(trajectory[keep]), "l2_abs", "time", "t", lines=seed_lines(trajectory[keep]))
    heat, laplace = figure.axes[:2]
    for ax, adam_seeds in ((heat, 4), (laplace, 3)):
        gids = [line.get_gid() for line in ax.get_lines()]
        assert sum(g.startswith("seed anagram ") for g in gids) == 4
        assert sum(g.startswith("seed adam ") for g in gids) == adam_seeds
        assert gids.count("median adam") == 1 and gids.count("median anagram") == 1
        medians = {line.get_gid(): line for line in ax.get_lines() if line.get_gid().startswith("median")}
        for line in ax.get_lines():
            if line.get_gid().startswith("seed"):
                median = medians[f"median {line.get_gid().split()[1]}"]
                assert line.get_linewidth() < median.get_linewidth() and line.get_alpha() < 1
                assert line.get_zorder() < median.get_zorder()  # drawn under it
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["adam (n=3–4)", "anagram (n=4)"]


def test_variants_get_distinct_colours_and_known_optimizers_keep_theirs():
    styles = line_styles(list(EIGHT) + ["amstramgram[precision=1e-9]", "my-plugin"])
    colours = [to_hex(style["color"]) for style in styles.values()]
    assert len(set(colours)) == len(colours)
    assert styles["amstramgram"]["linestyle"] == "-" and styles["amstramgram[fallback=none]"]["linestyle"] != "-"
    alone = line_styles(["anagram", "amstramgram[fallback=none]"])
    assert alone["anagram"] == styles["anagram"]  # the same colour whatever else is in the report
    assert to_hex(alone["amstramgram[fallback=none]"]["color"]) != to_hex(styles["amstramgram"]["color"])


def test_report_figures_name_the_protocol_not_its_hash(tmp_path, monkeypatch):
    figures = []

    def keep(figure, stem):
        figures.append(figure)
        return save_figure(figure, stem)

    monkeypatch.setattr(build, "save_figure", keep)
    runs, trajectory = zoo(labels=("anagram", "amstramgram"), seeds=(1, 2))
    build_report(runs, trajectory, tmp_path)
    assert len(figures) == 4  # error and loss curves, profiles
    for figure in figures:
        titles = [figure.get_suptitle(), *(ax.get_title() for ax in figure.axes)]
        assert "protocol quick, device cpu" in figure.get_suptitle()
        assert not any(IDENTITY["protocol_id"] in title for title in titles)
        legend = [text.get_text() for text in figure.legends[0].get_texts()]
        assert legend == ["amstramgram (n=2)", "anagram (n=2)"]
