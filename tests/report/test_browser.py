"""report.html of a real small run opened in headless Chromium: screenshot, the metrics table's
rows and every image loaded (read from the DOM after the page's scripts ran), no network request
(Chromium's own net log and the page's Resource Timing), and a control page with two remote
images that both checks catch. Skips when no Chromium is installed (`.ci/run` installs Debian's
`chromium` with apt-get when it can)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from small_run import small_run  # noqa: F401 - the session fixture

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = [pytest.mark.skipif(BROWSER is None, reason="no headless Chromium on PATH (apt-get install chromium)"),
              pytest.mark.slow]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--hide-scrollbars"]


def _chromium(args: list[str], tmp: Path) -> str:
    res = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args], capture_output=True, check=False,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _dom(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and the URLs the page itself requested (net log
    events whose network isolation key is the file:// page; Chromium's own background
    requests have other keys)."""
    net = tmp / f"{page.stem}.netlog.json"
    dom = _chromium(["--virtual-time-budget=3000", f"--log-net-log={net}", "--dump-dom", page.as_uri()], tmp)
    events = json.loads(net.read_text())["events"]
    urls = [e["params"]["url"] for e in events if str(e.get("params", {}).get("network_isolation_key", "")
                                                          ).startswith("file://") and "url" in e["params"]]
    return dom, [u for u in urls if not u.startswith(("file:", "data:"))]


def _body(dom: str) -> dict[str, int]:
    tag = re.search(r"<body([^>]*)>", dom).group(1)
    return {k: int(v) for k, v in re.findall(r'data-([a-z-]+)="(-?\d+)"', tag)}


def _metrics_rows(dom: str) -> list[list[str]]:
    table = dom.split('id="metrics"', 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td[^>]*>([^<]*)</td>", tr) for tr in table.split("<tr>")[1:] if "<td" in tr]


def test_report_in_headless_chromium(small_run, tmp_path):  # noqa: F811
    page = small_run["out"] / "report.html"
    shot = tmp_path / "report.png"
    _chromium(["--window-size=1280,2000", f"--screenshot={shot}", page.as_uri()], tmp_path)
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (2000, 1280) and len(np.unique(img.reshape(-1, 3), axis=0)) > 100  # not blank

    dom, requested = _dom(page, tmp_path)
    body = _body(dom)
    assert body["images"] >= 10 and body["images-loaded"] == body["images"]  # every <img> naturalWidth > 0
    assert body["resource-requests"] == 0 and requested == []
    rows = _metrics_rows(dom)
    assert sorted((r[0], r[1]) for r in rows) == [("tiny", a) for a in ("clean", "jpeg", "noop", "pgd")]
    auc = {r[1]: r[6] for r in rows}
    assert auc == {s["attack"]: f"{s['auc']:.3f}" for s in small_run["results"]["summary"]}


def test_the_checks_catch_remote_images_and_sorting_works(small_run, tmp_path):  # noqa: F811
    html = (small_run["out"] / "report.html").read_text()
    html = html.replace("<main>", '<main><img src="http://127.0.0.1:9/a.png"><img src="https://example.invalid/b.png">', 1)
    click = ("<script>window.addEventListener('load',function(){var th=[].slice.call(document.querySelectorAll("
             "'#metrics th')).filter(function(h){return h.textContent==='AUC';})[0];th.click();});</script></body>")
    page = tmp_path / "control.html"
    page.write_text(html.replace("</body>", click))
    dom, requested = _dom(page, tmp_path)
    body = _body(dom)
    assert body["images-loaded"] == body["images"] - 2 and body["resource-requests"] == 2
    assert sorted(requested) == ["http://127.0.0.1:9/a.png", "https://example.invalid/b.png"]
    aucs = [float(r[6]) for r in _metrics_rows(dom)]
    assert aucs == sorted(aucs) and aucs != [float(r[6]) for r in _metrics_rows(html)]
