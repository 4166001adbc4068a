"""What students see: lessons 01, 02, 05, 06 and 07 run in JupyterLab, in headless Chromium.

A widget can work in a test kernel and still show nothing in the page (mismatched widget versions, a
missing front-end extension, an error in the browser's console). These tests start JupyterLab from
the course's own environment, open the notebooks in Debian's Chromium through Playwright, run every
cell, and look at the page. Screenshots go to runs/browser/. Chromium or playwright missing is a
failure that says what to install, never a skip.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from browser import lab

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "runs" / "browser"
LESSON = REPO / "notebooks" / "01_gan_game.ipynb"
EXPLORER_LESSON = REPO / "notebooks" / "02_dcgan.ipynb"  # its LatentExplorer: a slider and buttons
TRANSLATION_LESSON = REPO / "notebooks" / "05_cyclegan.ipynb"  # its TranslationExplorer: a slider and a button
GROWTH_LESSON = REPO / "notebooks" / "06_progan.ipynb"  # its GrowthExplorer: one slider over stage and alpha
STYLE_LESSON = REPO / "notebooks" / "07_stylegan.ipynb"  # its StyleExplorer: crossover and psi sliders, new noise
# The lesson in smoke mode, but with live widgets (smoke mode alone picks PNG files) and a ring8 run
# long enough for the dashboard to redraw its samples several times while the test watches. The
# dashboard spends at most a tenth of the wall time drawing, so the number of redraws depends on the
# step count, not on the machine's speed: 200 steps gave 2 images during training here, 400 gave 5.
LESSON_OVERRIDES = {"INTERACTIVE": "True", "RING_STEPS": "400"}
RUN_ALL_S = 150  # each lesson in smoke mode takes well under a minute on a quiet machine
TRAINING = re.compile(r"·\s*training\s*·")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STEP = re.compile(r"step (\d+)(?: / (\d+))?")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium; a missing browser or playwright fails here with the fix."""
    problem = None
    try:
        lab.chromium_path()
        manager = lab.sync_playwright()
    except lab.BrowserSetupError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    playwright = manager.start()
    try:
        chromium = lab.launch_chromium(playwright)
    except Exception as exc:  # noqa: BLE001 - any launch failure is reported with the browser's words
        problem = f"Chromium ({lab.chromium_path()}) did not start under Playwright: {exc}"
    if problem:
        playwright.stop()
        pytest.fail(problem, pytrace=False)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    """JupyterLab on a free localhost port; its kernels run in smoke mode and write under runs/browser/."""
    lab.fresh_dir(ARTIFACTS)
    # One OpenMP thread per kernel: the test is about the page, not speed, and two threads stall many
    # times over whenever the machine's other core is busy (measured: run-all went past 150 s that way).
    env = {"GANCOURSE_SMOKE": "1", "GANCOURSE_RUN_DIR": str(ARTIFACTS / "run"), "OMP_NUM_THREADS": "1"}
    server = lab.LabServer(root=REPO, state_dir=tmp_path_factory.mktemp("jupyter"),
                           log_path=ARTIFACTS / "jupyterlab.log", env=env)
    problem = None
    try:
        server.start()
    except RuntimeError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def page(browser, server):
    """A fresh page and the log of its console; uncaught page errors are logged too."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console = lab.ConsoleLog()
    console.attach(page)
    page.console = console
    yield page
    context.close()
    server.shutdown_kernels()


def _shoot(page, name: str, element=None) -> None:
    path = ARTIFACTS / f"{name}.png"
    if element is not None:
        element.scroll_into_view_if_needed()
        element.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))


def _run_and_wait(page, server, on_poll=None, timeout_s: float = RUN_ALL_S) -> dict:
    """Run > Run All Cells, then poll until run-all is over; `on_poll()` is called on every round."""
    lab.run_all_cells(page)
    deadline = time.monotonic() + timeout_s
    while True:
        if on_poll is not None:
            on_poll()
        state = lab.notebook_state(page)
        if lab.finished(state):
            return state
        if time.monotonic() > deadline:
            waiting = [f"[{c['index']}] {c['prompt']} {c['source']!r}" for c in state["cells"] if c["count"] is None]
            pytest.fail(f"run-all did not finish within {timeout_s} s (kernel {state['kernel']}); cells not run: "
                        f"{waiting[:5]}. End of the server's log:\n{server.log_tail(2000)}", pytrace=False)
        time.sleep(0.1)


def _assert_no_cell_errors(page, state: dict) -> None:
    failed = [f"cell {c['index']} ({c['source']!r}...): {'; '.join(c['errors'])}" for c in state["cells"] if c["errors"]]
    assert not failed, "cells failed in the page:\n" + "\n".join(failed)
    not_run = [c["index"] for c in state["cells"] if c["count"] is None]
    assert not not_run, f"code cells {not_run} never ran"
    problems = lab.widget_problems(page)
    assert not problems, "the page shows errors instead of output:\n" + "\n".join(problems)


def _assert_console_clean(page) -> None:
    errors = page.console.errors
    assert not errors, (
        "the browser console has errors (tests/browser/lab.py CONSOLE_ALLOW lists the ignored ones):\n"
        + "\n".join(errors[:20])
    )


def test_lesson_01_runs_in_jupyterlab_with_a_live_dashboard(server, page):
    rel = "runs/browser/01_gan_game.ipynb"
    lab.copy_notebook(LESSON, REPO / rel, LESSON_OVERRIDES)
    started = time.monotonic()
    lab.open_notebook(page, server, rel)
    _shoot(page, "01_loaded")

    ring8 = page.locator(".gancourse-dashboard--ring8")
    samples, status = ring8.locator("img.gancourse-dashboard-samples"), ring8.locator(".gancourse-dashboard-status")
    seen: dict[str, str] = {}  # sample image digest -> the status line it was first seen with, during training

    def watch() -> None:
        if ring8.count() == 0:
            return
        # textContent, not innerText: the notebook skips rendering cells out of view (CSS
        # content-visibility), and innerText of those is empty although the page holds the text.
        try:
            before = status.text_content(timeout=2000)
            image = lab.image_info(samples, timeout=2000)
            after = status.text_content(timeout=2000)
        except Exception as err:  # the live view became its final picture between the reads: nothing to watch
            if type(err).__name__ != "TimeoutError":
                raise
            return
        if not (image and image["sha"] and image["width"] > 0 and TRAINING.search(before) and TRAINING.search(after)):
            return
        if image["sha"] not in seen:
            seen[image["sha"]] = after
            if len(seen) == 2:
                _shoot(page, "01_training", ring8)

    state = _run_and_wait(page, server, watch)
    elapsed = time.monotonic() - started
    _shoot(page, "01_finished")

    _assert_no_cell_errors(page, state)
    # At the end of training each dashboard's output is replaced by one static picture of its final
    # state, so the saved notebook shows the run where no widget can be drawn.
    assert page.locator(".gancourse-dashboard").count() == 0, "the live dashboards should be gone after training"
    cells = lab.cell_outputs(page, "Dashboard(interactive=INTERACTIVE")
    assert len(cells) == 2, f"expected the ring8 and digits training cells, found {cells}"
    for cell in cells:
        widget_views = [m for m in cell["mimes"] if WIDGET_VIEW in m]
        pictures = [size for size in cell["images"] if size[0] > 1.5 * size[1] > 300]
        assert not widget_views and len(pictures) == 1, (
            f"cell {cell['index']} should show one final picture (curves beside samples) and no widget; "
            f"outputs {cell['mimes']}, images {cell['images']}"
        )
    _shoot(page, "01_final_pictures")

    steps = [STEP.search(text) for text in seen.values()]
    assert len(seen) >= 2, (
        "the ring8 dashboard's sample image did not change while training ran: distinct images seen "
        f"during training {len(seen)} ({list(seen.values())})"
    )
    assert all(m and m.group(2) == LESSON_OVERRIDES["RING_STEPS"] for m in steps), (
        f"the watched dashboard should be the ring8 run of {LESSON_OVERRIDES['RING_STEPS']} steps: {list(seen.values())}"
    )
    _assert_console_clean(page)
    print(f"lesson 01 in the page: {elapsed:.1f} s; {len(seen)} sample images during training at "
          f"steps {[int(m.group(1)) for m in steps]}; ignored console lines: {page.console.allowed}")


def test_lesson_02_latent_explorer_slider_and_button_change_the_picture(server, page):
    explorer, image = _run_lesson_widget(page, server, EXPLORER_LESSON, "gancourse-latent")
    slider = explorer.locator(".gancourse-latent-slider")
    first = _wait_for_image(image, lambda info: info["width"] > 0, "the explorer's image never appeared")
    _shoot(page, "02_explorer_start", explorer)
    readout_before = slider.locator(".widget-readout").text_content()

    _drag_slider(page, slider, 0.9)  # to 90% of its track, as a student would
    _wait_for_image(image, lambda info: info["sha"] != first["sha"],
                    "dragging the t slider did not change the displayed image")
    readout_after = slider.locator(".widget-readout").text_content()
    assert float(readout_after) > float(readout_before), (
        f"the slider's readout went from {readout_before!r} to {readout_after!r}; it was dragged to the right"
    )
    # The drag sends several values (continuous_update); take the picture once the last one is drawn,
    # so that a late slider redraw cannot pass for the button's.
    moved = _settled_image(page, image)
    _shoot(page, "02_explorer_slider_moved", explorer)

    explorer.locator("button.gancourse-latent-new-b").click()
    _wait_for_image(image, lambda info: info["sha"] != moved["sha"],
                    "clicking 'new z B' did not change the displayed image")
    _shoot(page, "02_explorer_new_b", explorer)
    _assert_no_cell_errors(page, lab.notebook_state(page))
    _assert_console_clean(page)
    print(f"lesson 02's latent explorer: slider readout {readout_before} -> {readout_after}; "
          f"ignored console lines: {page.console.allowed}")


def test_lesson_05_translation_explorer_picks_another_test_image(server, page):
    explorer, image = _run_lesson_widget(page, server, TRANSLATION_LESSON, "gancourse-translation")
    first = _wait_for_image(image, lambda info: info["width"] > 0, "the translation explorer's image never appeared")
    _shoot(page, "05_translation_start", explorer)
    readout = explorer.locator(".gancourse-translation-slider .widget-readout")
    before = readout.text_content()
    explorer.locator("button.gancourse-translation-random").click()
    _wait_for_image(image, lambda info: info["sha"] != first["sha"],
                    "clicking 'random image' did not change the displayed image")
    after = readout.text_content()
    assert after != before, f"the slider still reads {before!r} after picking a random test image"
    _shoot(page, "05_translation_random", explorer)
    _assert_no_cell_errors(page, lab.notebook_state(page))
    _assert_console_clean(page)
    print(f"lesson 05's translation explorer: test image {before} -> {after}")


def test_lesson_06_growth_explorer_slider_goes_back_to_lower_stages(server, page):
    explorer, image = _run_lesson_widget(page, server, GROWTH_LESSON, "gancourse-growth")
    slider = explorer.locator(".gancourse-growth-slider")
    first = _wait_for_image(image, lambda info: info["width"] > 0, "the growth explorer's image never appeared")
    _shoot(page, "06_growth_start", explorer)
    before = float(slider.locator(".widget-readout").text_content())

    _drag_slider(page, slider, 0.2)  # from the last stage to about 8x8, halfway faded in
    _wait_for_image(image, lambda info: info["sha"] != first["sha"],
                    "dragging the growth slider did not change the displayed image")
    _settled_image(page, image)
    after = float(slider.locator(".widget-readout").text_content())
    assert after < before, f"the slider's readout went from {before} to {after}; it was dragged to the left"
    _shoot(page, "06_growth_moved", explorer)
    _assert_no_cell_errors(page, lab.notebook_state(page))
    _assert_console_clean(page)
    print(f"lesson 06's growth explorer: position {before} -> {after}")


def test_lesson_07_style_explorer_crossover_psi_and_noise_change_the_grid(server, page):
    explorer, image = _run_lesson_widget(page, server, STYLE_LESSON, "gancourse-styles")
    first = _wait_for_image(image, lambda info: info["width"] > 0, "the style explorer's image never appeared")
    _shoot(page, "07_styles_start", explorer)
    crossover = explorer.locator(".gancourse-styles-crossover")
    before = int(crossover.locator(".widget-readout").text_content())
    _drag_slider(page, crossover, 0.05)  # to crossover 0: every tile becomes its column's B
    moved = _wait_for_image(image, lambda info: info["sha"] != first["sha"],
                            "dragging the crossover slider did not change the displayed grid")
    after = int(crossover.locator(".widget-readout").text_content())
    assert after < before, f"the crossover went from {before} to {after}; it was dragged to the left"
    _drag_slider(page, explorer.locator(".gancourse-styles-psi"), 0.1)
    truncated = _wait_for_image(image, lambda info: info["sha"] != moved["sha"],
                                "dragging the psi slider did not change the displayed grid")
    explorer.locator("button.gancourse-styles-noise").click()
    _wait_for_image(image, lambda info: info["sha"] != truncated["sha"],
                    "clicking 'new noise' did not change the displayed grid")
    _shoot(page, "07_styles_moved", explorer)
    _assert_no_cell_errors(page, lab.notebook_state(page))
    _assert_console_clean(page)
    print(f"lesson 07's style explorer: crossover {before} -> {after}")


def _drag_slider(page, slider, fraction: float) -> None:
    """Drag an ipywidgets slider's handle with the mouse to `fraction` of its track."""
    track = slider.locator(".noUi-target").bounding_box()
    grip = slider.locator(".noUi-handle").bounding_box()
    page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], grip["y"] + grip["height"] / 2, steps=8)
    page.mouse.up()


def _run_lesson_widget(page, server, lesson: Path, css: str):
    """Run a lesson in smoke mode with live widgets; return its first `css` widget and that widget's <img>."""
    rel = f"runs/browser/{lesson.name}"
    lab.copy_notebook(lesson, REPO / rel, {"INTERACTIVE": "True"})  # smoke budgets, live widgets
    lab.open_notebook(page, server, rel)
    _assert_no_cell_errors(page, _run_and_wait(page, server))
    widget = page.locator(f".{css}").first
    image = widget.locator(f"img.{css}-image")
    image.wait_for(state="visible", timeout=10_000)
    return widget, image


def _wait_for_image(image, condition, message: str, timeout_s: float = 20) -> dict:
    """Poll the <img> until `condition(info)` holds for a decoded image; fail with `message` otherwise."""
    deadline = time.monotonic() + timeout_s
    info = None
    while time.monotonic() < deadline:
        info = lab.image_info(image)
        if info and info["sha"] and info["complete"] and condition(info):
            return info
        time.sleep(0.1)
    pytest.fail(f"{message} within {timeout_s:.0f} s (last seen: {info})", pytrace=False)


def _settled_image(page, image, timeout_s: float = 20) -> dict:
    """The <img> once the kernel is idle and the picture stayed the same for half a second."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        info = lab.image_info(image)
        if lab.notebook_state(page)["kernel"] == "idle" and info and info["sha"] and last and info["sha"] == last["sha"]:
            return info
        last = info
        time.sleep(0.5)
    pytest.fail(f"the explorer's image did not settle within {timeout_s:.0f} s (last seen: {last})", pytrace=False)
