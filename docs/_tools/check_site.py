"""Opens every page of the built site in headless Chromium and reports what a
reader would trip over.

    mkdocs build --strict --site-dir site
    python docs/_tools/check_site.py site --screenshots /tmp/shots

The site is served on 127.0.0.1 (a free port) and every `index.html` in it
is opened with Playwright driving Debian's Chromium (`/usr/bin/chromium`;
`playwright install` is never needed). A page fails when the browser logs a
console error or an uncaught exception, a request for one of the site's own
files fails or answers an error status, an image does not load
(`naturalWidth == 0`), a link to another page of the site leads to a file
that does not exist, or a link to an anchor (`#...`) finds no element with
that id. Pages named with `--screenshots` (a folder) are saved as PNGs, full
page, to look at.

Exits 1 and lists the problems if any page fails.
"""

import argparse
import contextlib
import functools
import http.server
import os
import sys
import threading
import urllib.parse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots taken by default: one page of each kind.
SCREENSHOTS = (
    "",
    "getting-started/",
    "guide/layers/",
    "tutorials/vanishing_gradients/",
    "benchmarks/",
    "api/kerasrnn.cells/",
)

CHECK_PAGE = """() => {
  const problems = [];
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push(`image not loaded: ${img.getAttribute('src')}`);
  }
  for (const a of document.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    if (href.startsWith('#') && href.length > 1) {
      const id = decodeURIComponent(href.slice(1));
      if (!document.getElementById(id)) problems.push(`anchor without target: ${href}`);
    }
  }
  return problems;
}"""


def page_paths(site):
    """The site-relative URL path of every page (`index.html`) of `site`."""
    paths = []
    for folder, _, files in os.walk(site):
        if "index.html" in files:
            rel = os.path.relpath(folder, site)
            paths.append("" if rel == "." else rel.replace(os.sep, "/") + "/")
    return sorted(paths)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(site):
    """Serves the folder `site` on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _local_target_exists(site, base, url):
    parsed = urllib.parse.urlparse(url)
    if not url.startswith(base):
        return True
    path = urllib.parse.unquote(parsed.path[len(urllib.parse.urlparse(base).path) :])
    full = os.path.join(site, *path.split("/"))
    return os.path.isfile(full) or os.path.isfile(os.path.join(full, "index.html"))


def check_site(site, screenshots=None, shots=SCREENSHOTS, executable=CHROMIUM):
    """`{page path: [problems]}` for every page of `site` with problems, and
    the number of pages opened."""
    from playwright.sync_api import sync_playwright

    site = os.path.abspath(site)
    problems = {}
    paths = page_paths(site)
    with serve(site) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        found = []
        page.on(
            "console",
            lambda m: (
                found.append(f"console {m.type}: {m.text}")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda e: found.append(f"page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: (
                found.append(f"request failed: {r.url} ({r.failure})")
                if r.url.startswith(base)
                else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                found.append(f"HTTP {r.status}: {r.url}")
                if r.url.startswith(base) and r.status >= 400
                else None
            ),
        )
        for path in paths:
            found.clear()
            page.goto(base + path, wait_until="networkidle")
            found += page.evaluate(CHECK_PAGE)
            links = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
            for url in sorted(set(links)):
                if not _local_target_exists(site, base, url.split("#")[0]):
                    found.append(f"link to a missing file: {url}")
            if screenshots and path in shots:
                os.makedirs(screenshots, exist_ok=True)
                name = (path.strip("/").replace("/", "_") or "home") + ".png"
                page.screenshot(path=os.path.join(screenshots, name), full_page=True)
            if found:
                problems[path or "/"] = list(found)
        browser.close()
    return problems, len(paths)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", help="The built site (mkdocs build --site-dir).")
    parser.add_argument("--screenshots", help="Folder for the screenshots.")
    parser.add_argument(
        "--shot",
        action="append",
        help="A page path to screenshot (repeatable). Default: one of each kind.",
    )
    args = parser.parse_args(argv)
    problems, opened = check_site(
        args.site, args.screenshots, tuple(args.shot) if args.shot else SCREENSHOTS
    )
    for path, found in problems.items():
        print(f"{path}:")
        for line in found:
            print(f"    {line}")
    print(f"{opened} pages opened, {len(problems)} with problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
