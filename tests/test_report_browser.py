"""The HTML report in a real browser (headless Chromium at 1280 px): every image loads, no table overflows.

The test copies the report, adds to the copy's index.html a script that measures the page once it has loaded and
writes the facts into the DOM (``<pre id="checks">``), and reads them back from Chromium's ``--dump-dom``.
"""
import html
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from pinnbench.report import build_report
from report_synthetic import EIGHT, suite, zoo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package "
                                                           "'chromium': apt-get install -y chromium)")
WIDTH = 1280
LONG_PATH = "/opt/conda/envs/" + "pinnbench_study_environment_" * 8 + "py311/bin/python3.11"
"""A manifest value with no space in it: a table cell that cannot wrap at a space."""
MEASURE = """<script>
window.addEventListener("load", () => {
  const facts = {
    width: window.innerWidth,
    images: [...document.images].map(i => ({src: i.getAttribute("src"), complete: i.complete,
                                            width: i.naturalWidth})),
    tables: [...document.querySelectorAll("table")].map(t => {
      const wrapped = t.parentElement !== document.body;
      const box = wrapped ? t.parentElement : document.body;
      const heading = (wrapped ? box : t).previousElementSibling;
      return {title: heading ? heading.textContent : "", table: t.getBoundingClientRect().width,
              scroll: box.scrollWidth, client: box.clientWidth};
    }),
    page: {scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth},
  };
  const pre = document.createElement("pre");
  pre.id = "checks";
  pre.textContent = JSON.stringify(facts);
  document.body.appendChild(pre);
});
</script>"""


def browser_facts(report, tmp_path):
    """Open a copy of ``report``/index.html in headless Chromium; return what the measuring script found."""
    copy = tmp_path / "copy"
    shutil.copytree(report, copy)
    index = copy / "index.html"
    index.write_text(index.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WIDTH},900", "--virtual-time-budget=5000",
               "--dump-dom", index.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="checks">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no measurements in Chromium's DOM (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report of three sections: failures and another protocol (the synthetic suite), and eight optimizers on
    two problems (the widest tables)."""
    runs, trajectory = suite(seeds=(1, 2, 3), problems=("heat", "laplace2d"))
    wide_runs, wide_trajectory = zoo(EIGHT, problems=("heat", "burgers"))
    for frame in (wide_runs, wide_trajectory):
        frame["protocol"], frame["protocol_id"] = "quick-1thread", "89a65af4da"
        frame["run_id"] = "wide-" + frame["run_id"]
    wide_runs["manifest"] = [json.dumps({**json.loads(m), "environment": {"executable": LONG_PATH}})
                             for m in wide_runs["manifest"]]
    return build_report(pd.concat([runs, wide_runs]), pd.concat([trajectory, wide_trajectory]),
                        tmp_path_factory.mktemp("browser") / "report", formats=("html",))


@pytest.fixture(scope="module")
def facts(report, tmp_path_factory):
    return browser_facts(report, tmp_path_factory.mktemp("chromium"))


def test_every_image_loads(facts, report):
    assert facts["width"] == WIDTH
    images = facts["images"]
    assert len(images) == len(list(report.rglob("*.png"))) >= 8
    assert [i["src"] for i in images if not (i["complete"] and i["width"] > 0)] == []


def test_no_table_overflows(facts):
    assert len(facts["tables"]) > 20
    overflowing = [t for t in facts["tables"] if t["scroll"] > t["client"]]
    assert overflowing == []
    assert facts["page"]["scroll"] <= facts["page"]["client"]
