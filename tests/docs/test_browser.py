"""The built site in a real headless browser: Debian's Chromium, driven by
Playwright, opens every page served on 127.0.0.1 and finds no console error,
no failed request for the site's own files, no image that does not load, no
link to a missing page and no anchor without its target
(`docs/_tools/check_site.py`).

Optional: needs `/usr/bin/chromium` (`apt-get install chromium`) and the
`playwright` package (never `playwright install`); the test says which is
missing when it skips. `mkdocs build --strict` and the HTML checks of
test_site.py run without them.
"""

import importlib.util
import os

import pytest

from tests.docs.tools import check_site

pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(check_site.CHROMIUM),
        reason=f"no Chromium at {check_site.CHROMIUM} (apt-get install chromium)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="the playwright package is not installed (pip install playwright)",
    ),
]


def test_every_page_opens_cleanly_in_chromium(site, tmp_path):
    folder, _ = site
    problems, opened = check_site.check_site(folder, screenshots=str(tmp_path))
    assert opened == len(check_site.page_paths(folder)) > 20
    assert not problems, problems
    assert len(os.listdir(tmp_path)) == len(check_site.SCREENSHOTS)


def test_the_check_reports_what_a_reader_would_trip_over(tmp_path):
    """A page with a missing image, a dead link, an anchor without target and
    a script error is reported with each of them; a clean page is not."""
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "index.html").write_text(
        '<html><body><h1 id="top">fine</h1><a href="#top">up</a>'
        '<a href="../">home</a></body></html>'
    )
    (tmp_path / "index.html").write_text(
        "<html><body>"
        '<img src="missing.png">'
        '<a href="nowhere/">dead</a><a href="#no-such-id">anchor</a>'
        '<a href="good/">good</a>'
        "<script>undefined_function()</script>"
        "</body></html>"
    )
    problems, opened = check_site.check_site(str(tmp_path))
    assert opened == 2
    assert list(problems) == ["/"]
    found = "\n".join(problems["/"])
    assert "image not loaded: missing.png" in found
    assert "HTTP 404" in found and "missing.png" in found
    assert "link to a missing file" in found and "nowhere/" in found
    assert "anchor without target: #no-such-id" in found
    assert "undefined_function" in found
