"""report.html of the transfer matrix and of the robustness leaderboard: self-contained, the
numbers of the objects they were built from."""

from __future__ import annotations

import re

import numpy as np

from fakebench.experiments.robustness import Leaderboard, Row, Settings
from fakebench.experiments.transfer import TransferTable
from fakebench.report.experiment_pages import robustness_page, transfer_page


def _cells(html: str, first: str) -> list[str]:
    row = next(r for r in html.split("<tr>") if f"<td>{first}</td>" in r)
    return re.findall(r"<td[^>]*>([^<]*)</td>", row)


def test_transfer_page(tmp_path):
    t = TransferTable(["a", "b"], ["a", "b"], asr=np.array([[0.9, 0.2], [0.3, 0.8]]),
                      asr_on_correct=np.array([[0.95, 0.25], [0.35, 0.85]]), auc=np.array([[0.1, 0.7], [0.6, 0.2]]),
                      auc_clean={"a": 0.97, "b": 0.93}, direction="evade", attack="pgd")
    t.save(tmp_path)
    page = transfer_page(t, tmp_path, {"eps": 8 / 255, "attack": "pgd"}, log_file=tmp_path / "t.log")
    html = page.read_text()
    assert "https://" not in html and "http://" not in html and html.count("data:image/png;base64,") == 1
    assert _cells(html, "a")[:3] == ["a", "0.950", "0.250"]  # the conditional ASR matrix comes first
    assert "0.970" in html and 'href="t.log"' in html


def test_robustness_page(tmp_path):
    rows = [Row("plain", 4 / 255, 0.1, 0.98, 0.9, 0.9, 0.05, 0.4, 0.3, {"evade": {"apgd-ce": 0.9}}, {"evade": 0.2},
                {}, ["apgd-ce", "square"], "linf"),
            Row("defended", 4 / 255, 0.2, 0.95, 0.85, 0.9, 0.6, 0.7, 0.8, {"evade": {"apgd-ce": 0.3}},
                {"evade": 0.7}, {}, ["apgd-ce", "square"], "linf")]
    board = Leaderboard(rows, Settings(eps=(4 / 255,)), {"real": 10, "fake": 10})
    board.save(tmp_path)
    html = robustness_page(board, tmp_path, {"eps": [4 / 255]}).read_text()
    assert "https://" not in html and html.count("data:image/png;base64,") == 1
    assert _cells(html, "defended")[:7] == ["defended", "4/255", "0.950", "0.850", "0.900", "0.600", "0.700"]
