"""The spectrum figure is drawn from a real run file (runner -> store -> plot)."""
import numpy as np
import pandas as pd
import pytest

from pinnbench.errors import PinnbenchError
from pinnbench.plot_spectrum import LOSS_TITLE, default_steps, plot_spectrum, spectrum_figure
from pinnbench.runner import RunSpec, execute
from pinnbench.store import load_info, load_spectra, write_run


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    from pinnbench.protocol import Protocol
    protocol = Protocol(name="test", seeds=(6865,), budget=60.0, steps=6, points="quick", diagnostics_every=2)
    record = execute(RunSpec("laplace2d", "amstramgram", 6865), protocol)
    assert record.manifest["status"] == "ok"
    return write_run(record, tmp_path_factory.mktemp("runs"))


def test_run_file_holds_the_diagnostics(run_file):
    spectra, info = load_spectra(run_file), load_info(run_file)
    assert {"singular_values", "coefficients", "rce"} <= set(spectra["name"])
    assert sorted(spectra["step"].unique()) == [1, 2, 4, 6]
    assert {"eta", "rank", "r_int", "r_eps", "precision", "phase", "loss"} <= set(info.columns)
    k = (spectra["name"] == "singular_values") & (spectra["step"] == 1)
    r = (spectra["name"] == "rce") & (spectra["step"] == 1)
    assert r.sum() == k.sum() + 1


def test_plot_from_file_and_from_frames(run_file, tmp_path):
    paths = plot_spectrum(run_file, steps=[1, 3, 6], out=tmp_path / "fig")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 5000 for p in paths)
    frames = (load_spectra(run_file), load_info(run_file))
    again = plot_spectrum(frames, out=tmp_path / "default", formats=("png",))
    assert again[0].exists()
    chosen = default_steps(sorted(frames[0]["step"].unique()), frames[1])
    assert chosen[0] == 1 and chosen[-1] == 6 and len(chosen) <= 4


def test_spectra_without_singular_values_are_refused(run_file, tmp_path):
    spectra, info = load_spectra(run_file), load_info(run_file)
    gram = spectra[spectra["name"] == "rce"].assign(name="gram_eigenvalues")  # what an engd run records
    with pytest.raises(PinnbenchError, match=r"^the run has no singular values \(its spectra: gram_eigenvalues\): "
                                             r"only SVD-based optimizers \(amstramgram, anagram\) record them$"):
        plot_spectrum((gram, info), out=tmp_path / "fig")
    assert not list(tmp_path.iterdir())


def loss_axes(figure, panels):
    """The loss panel (after the ``panels`` spectrum panels) and its legend labels."""
    ax = figure.axes[panels]
    return ax, [text.get_text() for text in ax.get_legend().get_texts()]


def test_the_loss_panel_shows_what_its_title_says(run_file):
    info = load_info(run_file)
    figure = spectrum_figure(run_file, steps=[1, 6])
    ax, legend = loss_axes(figure, 2)
    assert ax.get_title() == LOSS_TITLE == "train loss after each step" and ax.get_ylabel() == "train loss"
    (line,) = [line for line in ax.get_lines() if line.get_gid() == "train loss"]
    assert line.get_xdata().tolist() == info["step"].tolist()
    assert np.array_equal(line.get_ydata(), info["loss"].to_numpy())  # the loss after each step
    assert legend[0] == "train loss" and "steps of the spectrum panels" in legend
    steps_drawn = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "-"
                   and line.get_gid() != "train loss"]
    assert steps_drawn == [1, 6]


def test_phase_changes_are_dashed_and_named_only_where_there_are_some():
    steps = [1, 2, 3, 4]
    spectra = pd.DataFrame([{"step": s, "name": n, "index": i, "value": 10.0 ** -i}
                            for s in steps for n in ("singular_values", "rce") for i in range(4)])
    info = pd.DataFrame({"step": steps, "loss": [1.0, 0.1, 0.01, 0.001], "rank": [2.0] * 4})
    _, plain = loss_axes(spectrum_figure((spectra, info), steps=[1, 4]), 2)
    assert plain == ["train loss", "steps of the spectrum panels"]  # ANaGRAM-like: no phase, no dashed line
    figure = spectrum_figure((spectra, info.assign(phase=[0.0, 0.0, 1.0, 1.0])), steps=[1, 4])
    ax, legend = loss_axes(figure, 2)
    assert legend == ["train loss", "phase / precision change", "steps of the spectrum panels"]
    dashed = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert dashed == [3]
