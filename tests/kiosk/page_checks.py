"""What every kiosk step must be, checked in the browser: it fits the screen, and axe finds nothing.

The sizes are the screens kiosks and counter PCs have (landscape and the
portrait kiosks). "Fits" is measured without scrolling: every scroll position
is reset first, then the primary button must lie inside the viewport and be
the element hit at its centre (nothing covers it), and the other named
elements (a notice, the pad's keys) must lie inside the viewport too.

axe-core comes from npm (``tests/kiosk/package.json``; ``make venv`` installs
it) and is injected into the page; the WCAG 2.0/2.1 A and AA rules run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SIZES = [(1024, 768), (1280, 800), (1366, 768), (1920, 1080), (1080, 1920)]
AXE_SCRIPT = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

_MEASURE = """
([primary, others]) => {
  for (const element of document.querySelectorAll("*")) {
    if (element.scrollTop) element.scrollTop = 0;
    if (element.scrollLeft) element.scrollLeft = 0;
  }
  window.scrollTo(0, 0);
  const inside = (rect) => rect.width > 0 && rect.height > 0 && rect.top >= 0 && rect.left >= 0
    && rect.bottom <= window.innerHeight + 0.5 && rect.right <= window.innerWidth + 0.5;
  const find = (testId) => document.querySelector(`[data-testid="${testId}"]`);
  const button = find(primary);
  if (!button) return { problem: `no element ${primary}` };
  const rect = button.getBoundingClientRect();
  const hit = document.elementFromPoint(rect.left + rect.width / 2, rect.top + rect.height / 2);
  const problems = [];
  if (!inside(rect)) problems.push(`${primary} is outside the viewport: ${JSON.stringify(rect)}`);
  else if (!(hit === button || button.contains(hit)))
    problems.push(`${primary} is covered by ${hit ? hit.outerHTML.slice(0, 120) : "nothing"}`);
  for (const testId of others) {
    const element = find(testId);
    if (!element) { problems.push(`no element ${testId}`); continue; }
    const box = element.getBoundingClientRect();
    if (!inside(box)) problems.push(`${testId} is outside the viewport: ${JSON.stringify(box)}`);
  }
  return { problem: problems.join("; ") || null };
}
"""


def assert_fits(page: Any, primary: str, *others: str) -> None:
    """At every kiosk size: ``primary`` in view and not covered, ``others`` in view."""
    original = page.viewport_size
    failures = []
    try:
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
            outcome = page.evaluate(_MEASURE, [primary, list(others)])
            if outcome["problem"]:
                failures.append(f"{width}x{height}: {outcome['problem']}")
    finally:
        page.set_viewport_size(original)
    assert not failures, "\n".join(failures)


def assert_accessible(page: Any) -> None:
    """No WCAG 2.1 A/AA violation that axe-core finds on the page as it is now."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"axe-core is missing ({AXE_SCRIPT}): run `make venv`")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate(
        "(tags) => axe.run(document, { runOnly: { type: 'tag', values: tags } })", WCAG_AA
    )
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(node["target"][0] for node in v["nodes"][:5])
        for v in result["violations"]
    ]
    assert not violations, "\n".join(violations)
