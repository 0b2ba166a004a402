"""What the listener asks of the recordings catalogue instead of querying tables itself."""

from __future__ import annotations

from sqlmodel import Session

from casebook import cases
from casebook.db import Database
from casebook.models import Call, Callback, CallbackReason, Recording, RecordingKind
from hotline.app.config import Settings
from recordings import catalogue
from tests.recordings.helpers import LISTENER, NOW


def test_cases_with_message_known_paths_and_a_callbacks_case(
    db: Database, settings: Settings
) -> None:
    def site(session: Session) -> tuple[int, int, int]:
        spoke, silent = (
            cases.register_complaint(
                session, settings, LISTENER, caller_number=number, uniqueid=number
            )
            for number in ("0910000001", "0910000002")
        )
        assert spoke.id is not None and silent.id is not None
        session.add(
            Recording(path="/r/message-1.wav", kind=RecordingKind.MESSAGE, case_id=spoke.id)
        )
        session.add(Recording(path="/r/hotline-2.wav", kind=RecordingKind.CALL, case_id=silent.id))
        session.add(Call(linkedid="3.3", recording_path="/r/hotline-3.wav"))
        session.add(Call(linkedid="4.4"))
        callback = Callback(
            phone_number="0910000002",
            reason=CallbackReason.FOLLOW_UP.value,
            department="billing",
            case_id=silent.id,
            due_from=NOW,
            overdue_at=NOW,
        )
        session.add(callback)
        session.flush()
        assert callback.id is not None
        return spoke.id, silent.id, callback.id

    spoke, silent, callback = db.run(site)
    with db.session() as session:
        assert catalogue.cases_with_message(session, [spoke, silent]) == {spoke}
        assert catalogue.known_paths(session) == {
            "/r/message-1.wav",
            "/r/hotline-2.wav",
            "/r/hotline-3.wav",
        }
        assert catalogue.callback_case(session, callback) == silent
        assert catalogue.callback_case(session, callback + 1) is None
