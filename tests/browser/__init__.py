"""Helpers for tests/test_browser.py: a JupyterLab server of the course's environment, notebook copies
with changed parameters, and a Chromium page that runs them and watches the widgets."""
