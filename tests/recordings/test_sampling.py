"""QA sampling: per agent and per stratum, reproducible with a seed, never twice for a reviewer."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import RecordingKind
from hotline.app.config import Settings
from recordings.ingest import ingest_recording
from recordings.sampling import Sample, draw_sample
from tests.conftest import Staff
from tests.recordings.helpers import LISTENER, recorded_call, write_wav


def a_week_of_calls(db: Database, settings: Settings, staff: Staff) -> None:
    carer, biller = staff.actor("carer").agent_id, staff.actor("biller").agent_id
    for n in range(3):
        recorded_call(db, settings, f"carer-billing-{n}", agent_id=carer, category="billing")
    for n in range(2):
        recorded_call(db, settings, f"carer-network-{n}", agent_id=carer, category="network")
        recorded_call(db, settings, f"biller-{n}", agent_id=biller, category="billing")
        recorded_call(db, settings, f"abandoned-{n}", abandoned=True)
    recorded_call(db, settings, "callback-0", agent_id=carer, kind=RecordingKind.CALLBACK)
    # The caller's own message: no staff voice in it, so never QA material.
    write_wav(settings.recordings.root / "message.wav")
    message = str(settings.recordings.root / "message.wav")
    db.run(
        lambda s: ingest_recording(
            s, LISTENER, message, kind=RecordingKind.MESSAGE, root=settings.recordings.root
        )
    )


def draw(db: Database, reviewer: Actor, per_agent: int = 2, seed: int | None = 7) -> Sample:
    now = utcnow()
    return db.run(
        lambda s: draw_sample(
            s,
            reviewer,
            since=now - timedelta(days=7),
            until=now + timedelta(minutes=1),
            per_agent=per_agent,
            seed=seed,
        )
    )


def test_the_sample_is_stratified_per_agent_and_per_category(
    db: Database, settings: Settings, staff: Staff
) -> None:
    a_week_of_calls(db, settings, staff)
    sample = draw(db, staff.actor("qa"))
    assert Counter(item.agent for item in sample.drawn) == {"carer": 2, "biller": 2, "-": 2}
    carers = [item.stratum for item in sample.drawn if item.agent == "carer"]
    assert len(set(carers)) == 2 and set(carers) <= {"billing", "network", "callback"}
    assert {item.stratum for item in sample.drawn if item.agent == "-"} == {"abandoned"}
    assert all(item.recording.kind != RecordingKind.MESSAGE.value for item in sample.drawn)


def test_the_same_seed_on_the_same_data_draws_the_same_recordings(
    db: Database, settings: Settings, staff: Staff
) -> None:
    a_week_of_calls(db, settings, staff)
    first = draw(db, staff.actor("qa"), seed=12345)
    second = draw(db, staff.actor("supervisor"), seed=12345)  # a reviewer with nothing drawn yet
    assert [i.recording.id for i in first.drawn] == [i.recording.id for i in second.drawn]
    assert first.seed == second.seed == 12345


def test_a_reviewer_never_gets_the_same_recording_twice(
    db: Database, settings: Settings, staff: Staff
) -> None:
    a_week_of_calls(db, settings, staff)
    qa = staff.actor("qa")
    seen: list[int | None] = []
    for _ in range(4):
        seen += [item.recording.id for item in draw(db, qa, seed=None).drawn]
    assert len(seen) == len(set(seen)) == 10  # every call recording once, then nothing more
    assert draw(db, qa).drawn == []
