"""`hotline demo`: a first look on embedded defaults (a SQLite file in a folder of its own).

Today it walks complaints through the casebook as the IVR, an agent and a supervisor would; the
PBX simulator, the FastAGI IVR and Whisper drafts join it as those parts land (issue 8).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import yaml

from casebook import agents, cases, followups
from casebook.access import Actor
from casebook.db import Database
from casebook.models import Case, ContactMethod, FollowUpResult
from casebook.reports import Report, build_report
from hotline.config import Settings, load_settings

# What callers say most often (telecom complaints), as the IVR's draft would hold them.
SAMPLE_COMPLAINTS: tuple[tuple[str, str], ...] = (
    ("0910000001", "انقطعت خدمة الإنترنت عندي منذ ثلاثة أيام ولم يتصل بي أحد"),
    ("0920000002", "وصلتني فاتورة أعلى من المعتاد مع أنني لم أغير باقتي"),
    ("0910000003", "سرعة الإنترنت بطيئة جداً في المساء في منطقة حي الأندلس"),
    ("0940000004", "طلبت نقل الخط إلى عنوان جديد قبل أسبوعين ولم يتم شيء"),
    ("0910000005", "تعامل الموظف في الفرع معي لم يكن لائقاً"),
)


@dataclass(frozen=True)
class DemoResult:
    config_path: Path
    registered: list[Case]
    walked_through: Case
    report: Report


def write_demo_config(folder: Path) -> Path:
    """A config file for the demo site, so the next commands can point at it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    data = {"database": {"url": "sqlite:///hotline.db"}, "recordings": {"root": "recordings"}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_demo(
    folder: Path, calls: int, now: datetime | None = None, progress: Callable[[str], None] = print
) -> DemoResult:
    config_path = write_demo_config(folder)
    settings: Settings = load_settings(config_path, environ={})
    db = Database(settings.database)
    me = getpass.getuser()
    if db.run(lambda s: agents.list_agents(s, Actor.system("demo"))) == []:
        progress(f"adding you ({me}) as the site's admin and two agents")
        db.run(
            lambda s: agents.add_agent(
                s, settings, me, username=me, display_name=me, roles=["admin", "supervisor"]
            )
        )
        for username, name, department in (
            ("amal", "أمل", "customer-care"),
            ("khaled", "خالد", "technical"),
        ):
            db.run(
                partial(
                    agents.add_agent,
                    settings=settings,
                    acting_username=me,
                    username=username,
                    display_name=name,
                    roles=["agent"],
                    department=department,
                )
            )
    ivr = Actor.system("ivr")
    registered: list[Case] = []
    for index in range(calls):
        number, text = SAMPLE_COMPLAINTS[index % len(SAMPLE_COMPLAINTS)]
        case = db.run(
            partial(
                cases.register_complaint,
                settings=settings,
                actor=ivr,
                caller_number=number,
                draft_text=text,
                now=now,
            )
        )
        progress(f"call from {number}: case {case.reference} registered")
        registered.append(case)

    agent = db.run(lambda s: agents.resolve_actor(s, "amal", settings.roles))
    supervisor = db.run(lambda s: agents.resolve_actor(s, me, settings.roles))
    reference = registered[0].reference
    assert reference is not None
    steps: list[tuple[str, Callable[..., object]]] = [
        (
            "amal confirms the draft",
            lambda s: cases.confirm_draft(
                s,
                settings,
                agent,
                reference,
                text=SAMPLE_COMPLAINTS[0][1],
                category="network",
                now=now,
            ),
        ),
        ("amal starts work", lambda s: cases.start_work(s, agent, reference, now=now)),
        (
            "amal resolves it",
            lambda s: cases.resolve_case(
                s, settings, agent, reference, summary="أعيد ضبط المنفذ في المقسم", now=now
            ),
        ),
        (
            "amal calls back: the caller is satisfied",
            lambda s: followups.log_followup(
                s,
                settings,
                agent,
                reference,
                method=ContactMethod.PHONE,
                result=FollowUpResult.SATISFIED,
                effort_score=5,
                now=now,
            ),
        ),
        ("amal closes it formally", lambda s: cases.close_case(s, agent, reference, now=now)),
    ]
    for label, step in steps:
        db.run(step)
        progress(f"case {reference}: {label}")
    walked = db.run(lambda s: cases.get_case(s, supervisor, reference))
    report = db.run(lambda s: build_report(s, supervisor, settings.followup))
    db.dispose()
    return DemoResult(config_path, registered, walked, report)
