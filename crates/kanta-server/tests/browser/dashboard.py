"""The dashboard in a real browser (Chromium, driven by Playwright), run by
`dashboard_browser.rs` against a server it has filled with a small shop.

At 1280 px and at 390 px: logs in through the form, opens every page, and on each checks
that the browser reported no console error or warning, no uncaught exception, no failed
request and no response of 400 or more; runs axe-core (injected through the DevTools
protocol, which the page's Content-Security-Policy does not govern) and fails on serious or
critical violations; checks that keyboard focus is visible; saves a full-page screenshot.
Then: a customer whose name is an XSS payload shows it as text (no dialog opens), a
customer erased through the page's form is gone, a read session is offered no erasure, and
logging out ends the session.

Prints one JSON object per line (`page`, `erased`, `done`); exits 1 with the problems on
stderr if any check failed.
"""

import argparse
import json
import sys

from playwright.sync_api import sync_playwright

WIDTHS = [(1280, 900), (390, 844)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--read", required=True)
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--axe", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--hostile", required=True, help="path of the customer whose name is an XSS payload")
    ap.add_argument("--hostile-name", required=True)
    ap.add_argument("--erase", required=True, help="id of the customer to erase through the page")
    ap.add_argument("--pages", required=True, help="JSON list of [name, path] to open")
    ap.add_argument("--segment-expression", required=True)
    ap.add_argument("--segment-count", required=True, type=int, help="what POST /v1/segments/preview counts")
    args = ap.parse_args()
    axe_source = open(args.axe, encoding="utf-8").read()
    pages = json.loads(args.pages)
    problems = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        for width, height in WIDTHS:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            seen = watch(page)
            login(page, args.base, args.admin, problems, f"{width}px")
            for name, path in pages:
                visit(page, seen, args.base + path, name, width, axe_source, args.shots, problems)
            hostile(page, seen, args.base + args.hostile, args.hostile_name, problems, width)
            context.close()

        # The segment editor: the count follows the typing; a mistake is placed; save.
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        seen = watch(page)
        login(page, args.base, args.admin, problems, "editor")
        editor(page, seen, args, problems)

        # Erasure through the page, by an admin; the Rust side checks the API afterwards.
        page.goto(f"{args.base}/customers/{args.erase}")
        page.get_by_label("Type the id").fill(args.erase)
        page.get_by_role("button", name="Erase").click()
        page.wait_for_load_state()
        if not page.url.startswith(f"{args.base}/customers?erased="):
            problems.append(f"erase: ended at {page.url}")
        if f"Customer {args.erase} was erased" not in page.inner_text("main"):
            problems.append("erase: no confirmation on the list")
        report(seen, "after erasing", problems)
        print(json.dumps({"erased": args.erase}), flush=True)

        # Logging out ends the session: the overview asks for a login again.
        page.get_by_role("button", name="Log out").click()
        page.wait_for_load_state()
        page.goto(args.base + "/")
        if "/login" not in page.url:
            problems.append(f"logout: / did not ask for a login ({page.url})")
        context.close()

        # A read session sees the customer page without the erase form.
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        seen = watch(page)
        login(page, args.base, args.read, problems, "read")
        page.goto(args.base + args.hostile)
        if page.get_by_role("button", name="Erase").count() != 0:
            problems.append("read session: offered the erase form")
        report(seen, "read session", problems)
        context.close()
        browser.close()

    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"done": True}), flush=True)


def watch(page):
    """Collects what the browser reports while pages load."""
    seen = {"console": [], "errors": [], "failed": [], "bad": [], "dialogs": []}
    page.on("console", lambda m: m.type in ("error", "warning") and seen["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    # A request cancelled by the next navigation (a favicon still loading when a form is sent)
    # is ERR_ABORTED: not a failure of the page. Anything else is.
    page.on(
        "requestfailed",
        lambda r: r.failure != "net::ERR_ABORTED" and seen["failed"].append(f"{r.url}: {r.failure}"),
    )
    page.on("response", lambda r: r.status >= 400 and seen["bad"].append(f"{r.status} {r.url}"))

    def dialog(d):
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    return seen


def report(seen, where, problems):
    for kind, items in seen.items():
        for item in items:
            problems.append(f"{where}: {kind}: {item}")
        items.clear()


def login(page, base, token, problems, where):
    page.goto(base + "/")
    if "/login" not in page.url:
        problems.append(f"{where}: / did not ask for a login")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    if page.url.rstrip("/") != base:
        problems.append(f"{where}: login ended at {page.url}")


def visit(page, seen, url, name, width, axe_source, shots, problems):
    where = f"{name} at {width}px"
    page.goto(url)
    page.wait_for_load_state("load")
    # A report computed in the background first says so and reloads itself: wait for it.
    for _ in range(60):
        if "being computed" not in page.inner_text("main"):
            break
        page.wait_for_timeout(500)
        page.goto(url)
        page.wait_for_load_state("load")
    report(seen, where, problems)
    # axe-core, through the DevTools protocol (the page's policy allows no injected script).
    page.evaluate(axe_source)
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,"
        " target: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    serious = [v for v in result if v["impact"] in ("serious", "critical")]
    for v in serious:
        problems.append(f"{where}: axe {v['impact']} {v['id']}: {v['help']} ({v['nodes']} nodes: {v['target']})")
    shot = f"{shots}/{name}-{width}.png"
    page.screenshot(path=shot, full_page=True)
    # Keyboard: the first Tab reaches the skip link, and focus is drawn.
    page.keyboard.press("Tab")
    focus = page.evaluate(
        "() => { const e = document.activeElement; const s = getComputedStyle(e);"
        " return {text: e.textContent.trim(), outline: s.outlineStyle, left: e.getBoundingClientRect().left}; }"
    )
    if focus["text"] != "Skip to content" or focus["outline"] == "none" or focus["left"] < 0:
        problems.append(f"{where}: the first Tab does not show the skip link: {focus}")
    # Nothing wider than the screen but the tables that scroll inside their own box.
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        problems.append(f"{where}: the page is {overflow}px wider than the window")
    print(json.dumps({"page": name, "width": width, "axe_minor": len(result) - len(serious), "screenshot": shot}), flush=True)


def editor(page, seen, args, problems):
    page.goto(args.base + "/segments/new")
    box = page.get_by_label("Expression")
    box.press_sequentially("orders >> 2", delay=20)
    try:
        page.wait_for_function("() => document.querySelector('#problem').textContent.includes('column')", timeout=10000)
    except Exception:
        problems.append(f"editor: no problem shown for a mistake: {page.inner_text('#problem')!r}")
    box.fill("")
    box.press_sequentially(args.segment_expression, delay=10)
    try:
        page.wait_for_function(
            "n => document.querySelector('#count').dataset.count === String(n)", arg=args.segment_count, timeout=10000
        )
    except Exception:
        shown = page.evaluate("() => document.querySelector('#count').dataset.count")
        problems.append(f"editor: the live count is {shown!r}, the API counts {args.segment_count}")
    if page.inner_text("#problem").strip():
        problems.append(f"editor: a problem is still shown: {page.inner_text('#problem')!r}")
    page.get_by_label("Name").fill("typed in the editor")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_load_state()
    if "/segments/" not in page.url or "typed in the editor" not in page.inner_text("h1"):
        problems.append(f"editor: saving ended at {page.url}")
    report(seen, "editor", problems)
    print(json.dumps({"saved": page.url}), flush=True)


def hostile(page, seen, url, name, problems, width):
    where = f"hostile customer at {width}px"
    page.goto(url)
    page.wait_for_load_state("load")
    shown = page.inner_text("h1")
    if shown != name:
        problems.append(f"{where}: the heading shows {shown!r}, not the name as text")
    if page.locator("main script, main img").count() != 0:
        problems.append(f"{where}: the payload became elements")
    report(seen, where, problems)


if __name__ == "__main__":
    main()
