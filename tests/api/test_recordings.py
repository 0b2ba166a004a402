"""Recordings through the server: a verified copy streamed with its SHA-256, the access audited
with purpose and reason; refused for the wrong person or a tampered file, audited too; the
temporary copy gone once sent."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from sqlmodel import Session, col, select

from casebook.clock import utcnow
from casebook.models import AuditEvent, CaseStatus, Recording
from tests.api.conftest import ApiSite, unique
from tests.recordings.helpers import recorded_call, reference_of


def audio_path(recording_id: int, purpose: str, reason: str) -> str:
    return f"/v1/recordings/{recording_id}/audio?purpose={purpose}&reason={quote(reason)}"


def entries(api_site: ApiSite, recording_id: int) -> list[AuditEvent]:
    with api_site.db.session() as session:
        query = (
            select(AuditEvent)
            .where(AuditEvent.object_type == "recording")
            .where(AuditEvent.object_id == str(recording_id))
            .order_by(col(AuditEvent.id))
        )
        return list(session.exec(query))


def copies_left(api_site: ApiSite) -> list[Path]:
    folder = api_site.server.copies_folder
    assert folder is not None
    return [path for path in folder.rglob("*") if path.is_file()]


def test_play_and_export_stream_a_verified_copy(api_site: ApiSite) -> None:
    recording = recorded_call(api_site.db, api_site.settings, unique("play"))
    original = Path(recording.path).read_bytes()
    qa = api_site.client("qa")
    for purpose in ("play", "export"):
        answer = qa.get(audio_path(recording.id or 0, purpose, "مراجعة الجودة"))
        assert answer.status == 200, answer.body
        assert answer.body == original
        assert answer.headers["content-type"] == "audio/wav"
        assert answer.headers["x-recording-sha256"] == hashlib.sha256(original).hexdigest()
        name = Path(recording.path).name
        assert answer.headers["content-disposition"] == f'attachment; filename="{name}"'
    logged = [
        (e.action, e.actor, e.allowed, e.detail.get("why"))
        for e in entries(api_site, recording.id or 0)
    ]
    # Sent to play, not heard: only the client can say it played (below).
    assert ("recording.sent", "qa", True, "مراجعة الجودة") in logged
    assert ("recording.export", "qa", True, "مراجعة الجودة") in logged
    assert not any(action == "recording.played" for action, *_ in logged)
    assert copies_left(api_site) == []


def test_the_client_reports_how_playing_went(api_site: ApiSite) -> None:
    carer = api_site.agent("carer")
    recording = recorded_call(api_site.db, api_site.settings, unique("heard"), agent_id=carer.id)
    rec = recording.id or 0
    own = api_site.client("carer")
    played = own.post(f"/v1/recordings/{rec}/playback", {"reason": "prep", "outcome": "played"})
    assert (played.status, played.json()) == (201, {"recording": rec, "outcome": "played"})
    failed = own.post(
        f"/v1/recordings/{rec}/playback",
        {"reason": "prep", "outcome": "failed", "error": "aplay stopped with exit code 1"},
    )
    assert failed.status == 201, failed.body
    logged = [(e.action, e.actor, e.detail.get("error")) for e in entries(api_site, rec)]
    assert ("recording.played", "carer", None) in logged
    assert ("recording.play_failed", "carer", "aplay stopped with exit code 1") in logged
    other = api_site.client("biller").post(
        f"/v1/recordings/{rec}/playback", {"reason": "x", "outcome": "played"}
    )
    assert (other.status, other.error["code"]) == (403, "denied")
    odd = own.post(f"/v1/recordings/{rec}/playback", {"reason": "x", "outcome": "loud"})
    assert (odd.status, odd.error["code"]) == (400, "invalid")


def test_an_agent_of_another_department_can_neither_read_play_nor_export(
    api_site: ApiSite,
) -> None:
    carer = api_site.agent("carer")
    recording = recorded_call(
        api_site.db, api_site.settings, unique("cc"), agent_id=carer.id, status=CaseStatus.OPEN
    )
    reference = reference_of(api_site.db, recording)
    biller = api_site.client("biller")
    read = biller.get(f"/v1/cases/{reference}")
    assert (read.status, read.error["code"]) == (403, "denied")
    for purpose in ("play", "export"):
        refused = biller.get(audio_path(recording.id or 0, purpose, "curious"))
        assert (refused.status, refused.error["code"]) == (403, "denied"), purpose
    refusals = [(e.action, e.actor) for e in entries(api_site, recording.id or 0) if not e.allowed]
    assert ("recording.play", "biller") in refusals
    assert ("recording.export", "biller") in refusals
    with api_site.db.session() as session:
        denied_read = session.exec(
            select(AuditEvent).where(
                AuditEvent.object_id == reference,
                AuditEvent.actor == "biller",
                col(AuditEvent.allowed).is_(False),
            )
        ).all()
    assert denied_read
    # The agent the case is assigned to may play it (never export it).
    own = api_site.client("carer")
    assert own.get(audio_path(recording.id or 0, "play", "the customer's words")).status == 200
    assert own.get(audio_path(recording.id or 0, "export", "keep it")).status == 403
    assert copies_left(api_site) == []


def test_a_tampered_recording_is_refused_and_audited(api_site: ApiSite) -> None:
    recording = recorded_call(api_site.db, api_site.settings, unique("tamper"))
    path = Path(recording.path)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-2] + b"\x7f\x7f")
    answer = api_site.client("qa").get(audio_path(recording.id or 0, "play", "check"))
    assert (answer.status, answer.error["code"]) == (403, "tampered")
    assert "SHA-256" in answer.error["error"]
    (refusal,) = [e for e in entries(api_site, recording.id or 0) if not e.allowed]
    assert refusal.action == "recording.play"
    assert refusal.detail["expected"] == recording.sha256
    assert copies_left(api_site) == []


def test_a_missing_file_a_missing_reason_and_an_unknown_recording(api_site: ApiSite) -> None:
    recording = recorded_call(api_site.db, api_site.settings, unique("gone"))
    Path(recording.path).unlink()
    qa = api_site.client("qa")
    gone = qa.get(audio_path(recording.id or 0, "play", "check"))
    assert (gone.status, gone.error["code"]) == (403, "tampered")
    assert "missing" in gone.error["error"]
    no_reason = qa.get(audio_path(recording.id or 0, "play", " "))
    assert (no_reason.status, no_reason.error["code"]) == (400, "refused")
    unknown = qa.get(audio_path(10**9, "play", "check"))
    assert (unknown.status, unknown.error["code"]) == (404, "not_found")
    purpose = qa.get(audio_path(recording.id or 0, "share", "check"))
    assert (purpose.status, purpose.error["code"]) == (400, "invalid")
    without = qa.get(f"/v1/recordings/{recording.id}/audio?purpose=play")
    assert (without.status, without.error["code"]) == (400, "invalid")
    assert "reason" in without.error["error"]


def test_a_recording_deleted_by_retention_is_404(api_site: ApiSite) -> None:
    recording = recorded_call(
        api_site.db, api_site.settings, unique("old"), status=CaseStatus.CLOSED
    )

    def expire(session: Session) -> None:
        row = session.get(Recording, recording.id)
        assert row is not None
        row.retained_until = utcnow() - timedelta(days=1)
        session.add(row)

    api_site.db.run(expire)
    deleted = api_site.client("admin").post("/v1/recordings/retention", {"dry_run": False})
    assert deleted.status == 200
    assert any(item["recording_id"] == recording.id and item["deleted"] for item in deleted.json())
    answer = api_site.client("qa").get(audio_path(recording.id or 0, "play", "check"))
    assert (answer.status, answer.error["code"]) == (404, "not_found")
    assert "deleted by retention" in answer.error["error"]
