"""A draft whose reviewer crashed is free again once the lease runs out, with nothing running to
expire it (a site of its own: its drafts are leased for 15 seconds)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from casebook.clock import ensure_aware, utcnow
from casebook.models import CaseStatus
from tests.conftest import BACKENDS
from tests.site import Site, backend_url, running_site
from tests.test_draft_leases_cli import WAIT_SECONDS, draft, reviewing


@pytest.fixture(params=BACKENDS)
def short_lease_site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """A site whose drafts are leased for 15 seconds, with amal and omar of customer care."""
    url = backend_url(request)
    with running_site(url, sections={"drafts": {"lease_minutes": 0.25}}) as running:
        running.add_agent("amal", ["agent"], "customer-care")
        running.add_agent("omar", ["agent"], "customer-care")
        yield running


def test_a_crashed_reviewers_draft_is_free_again_once_the_lease_runs_out(
    short_lease_site: Site,
) -> None:
    site = short_lease_site
    reference = draft(site)
    omar = site.people["omar"]
    crashed = reviewing(site.people["amal"])
    crashed.kill()
    crashed.communicate(timeout=WAIT_SECONDS)
    [listed] = json.loads(omar.ok("drafts", "list", "--json").stdout)
    assert listed["leased_to"] == "amal"
    until = site.stored_case(reference).draft_lease_until
    assert until is not None
    # Nothing runs to expire it: past its end the draft is simply free.
    time.sleep(max(0.0, (ensure_aware(until) - utcnow()).total_seconds()) + 0.5)
    omar.ok("drafts", "confirm", reference, "--category", "billing")
    assert site.stored_case(reference).status == CaseStatus.OPEN
    events = json.loads(
        site.people["admin"].ok("audit", "list", "--object-type", "case", "--json").stdout
    )
    [took_over] = [e for e in events if e["action"] == "draft.take" and e["actor"] == "omar"]
    assert took_over["detail"]["ran_out"]["holder"] == "amal"
