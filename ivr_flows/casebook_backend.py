"""The IVR's backend on the casebook services: a complaint is registered, its message recording
stored and queued for transcription in one transaction; status lookups go through the same
confidentiality rule the casebook applies everywhere."""

from __future__ import annotations

import logging

from sqlmodel import Session

from casebook import cases, jobs
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import RecordingKind
from ivr_flows.backend import RegisteredComplaint, StatusAnswer
from ivr_flows.settings import IvrConfig
from recordings.ingest import ingest_recording

log = logging.getLogger(__name__)

IVR = Actor.system("ivr")


class CasebookBackend:
    def __init__(self, db: Database, settings: IvrConfig) -> None:
        self.db = db
        self.settings = settings

    def register_complaint(
        self,
        *,
        caller_number: str | None,
        uniqueid: str,
        linkedid: str,
        message_path: str | None,
        menu_choices: list[str],
        category: str | None,
        keypad_number: str | None = None,
    ) -> RegisteredComplaint:
        if category is not None and category not in self.settings.sla.categories:
            # A flow file naming a category config.yaml lacks must not lose the complaint.
            log.warning(
                "flow category %r is not in config sla.categories; registered without", category
            )
            category = None

        def work(session: Session) -> RegisteredComplaint:
            now = utcnow()
            known = cases.case_for_call(session, uniqueid)
            case = cases.register_complaint(
                session,
                self.settings,
                IVR,
                caller_number=caller_number,
                uniqueid=uniqueid,
                linkedid=linkedid,
                category=category,
                keypad_number=keypad_number,
                now=now,
            )
            if message_path is not None:
                recording = ingest_recording(
                    session,
                    IVR,
                    message_path,
                    kind=RecordingKind.MESSAGE,
                    root=self.settings.recordings.root,
                    case_id=case.id,
                    retention=self.settings.retention,
                )
                # A message named outside recordings.root was refused (and audited): the
                # complaint stands without it, an agent takes it from the case.
                if recording is not None:
                    jobs.enqueue_transcription(session, IVR, recording, now)
            assert case.reference is not None and case.promised_by is not None
            return RegisteredComplaint(
                reference=case.reference,
                promised_by=case.promised_by,
                category=case.category,
                created=known is None,
            )

        log.debug("register complaint uniqueid=%s choices=%s", uniqueid, menu_choices)
        return self.db.run(work)

    def case_status(
        self, *, reference: str, caller_number: str | None, last4: str | None
    ) -> StatusAnswer:
        answer = self.db.run(
            lambda session: cases.status_for_caller(
                session,
                IVR,
                reference=reference,
                caller_number=caller_number,
                last4=last4,
                phone=self.settings.phone,
                limits=self.settings.status_by_phone,
            )
        )
        return StatusAnswer(
            found=answer.found,
            identity_confirmed=answer.identity_confirmed,
            status=answer.status,
            promised_by=answer.promised_by,
            limited=answer.limited,
        )
