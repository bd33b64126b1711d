"""The review's HTML page rendered by headless Chromium (Debian's package): its pictures are drawn.

The screenshot of the page is compared with one of the same page with its pictures removed: the
pictures fill most of the first screen, so the two must differ over a large area, and the
picture areas of the real page hold many colours (plots, not blank boxes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from soma_ray.review.config import ReviewSection
from soma_ray.review.render import write_review
from soma_ray.review.run import record_snapshot, review_of
from tests.review.conftest import Played

CHROMIUM = Path("/usr/bin/chromium")
_install_tried = False


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; installed with apt-get once per session when running as root."""
    global _install_tried
    if not CHROMIUM.exists() and not _install_tried and os.geteuid() == 0 and shutil.which("apt-get"):
        _install_tried = True
        subprocess.run("apt-get update -qq && apt-get install -y -qq chromium", shell=True, check=False,
                       capture_output=True, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (install Debian's chromium package, as root: apt-get install chromium)")
    return CHROMIUM


def screenshot(browser: Path, page: Path, out: Path) -> np.ndarray:
    subprocess.run(
        [str(browser), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={out}",
         "--window-size=1200,3000", page.resolve().as_uri()],
        check=True, capture_output=True, timeout=180,
    )
    return imread(out)[..., :3]


def test_the_page_renders_with_its_pictures(played: Played, chromium: Path, tmp_path: Path) -> None:
    import asyncio

    asyncio.run(record_snapshot(played.sim, played.driver.state.path))
    review = review_of(played.driver.state, played.address, ReviewSection())
    folder = write_review(review, tmp_path / "review")
    page = folder / "review.html"
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<img [^>]*>", "", page.read_text()))
    drawn = screenshot(chromium, page, tmp_path / "drawn.png")
    without = screenshot(chromium, bare, tmp_path / "without.png")
    assert drawn.shape == without.shape and drawn.shape[0] >= 2000
    differs = np.abs(drawn - without).sum(axis=2) > 0.05
    assert differs.mean() > 0.1  # the pictures change a large part of the page (plots are mostly white)
    top = drawn[: drawn.shape[0] // 2].reshape(-1, 3)
    colours = len(np.unique(np.round(top * 255).astype(np.uint8), axis=0))
    assert colours > 200  # anti-aliased plots, colour maps: far more than text on white
    bare_colours = len(np.unique(np.round(without[: without.shape[0] // 2].reshape(-1, 3) * 255).astype(np.uint8),
                                 axis=0))
    assert colours > 2 * bare_colours
