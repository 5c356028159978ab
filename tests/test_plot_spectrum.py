"""The spectrum figure is drawn from a real run file (runner -> store -> plot)."""
import pytest

from pinnbench.errors import PinnbenchError
from pinnbench.plot_spectrum import default_steps, plot_spectrum
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
