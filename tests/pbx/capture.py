"""Regenerate the replay corpus in tests/fixtures/ami/<scenario>/ from the real PBX.

    python -m tests.pbx.capture              run the real-PBX suite, capturing each scenario's
                                             AMI bytes, then write every expected.json
    python -m tests.pbx.capture --expected   only write expected.json again, from the stored
                                             captures, with today's code

expected.json is what the code makes of the traffic: read the diff before committing it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.hotline.corpus import CORPUS, Scenario, expected_now, replay_settings, scenarios
from tests.pbx.site import REPO
from tests.pbx.traffic import CAPTURE_ENV


def capture() -> None:
    env = {**os.environ, CAPTURE_ENV: str(CORPUS)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/pbx"]
    if subprocess.run(command, env=env, cwd=REPO, check=False).returncode != 0:
        sys.exit("the real-PBX suite failed: nothing to trust in this capture")


def write_expected() -> None:
    for name in scenarios():
        with tempfile.TemporaryDirectory() as folder:
            expected = expected_now(Scenario.load(name), replay_settings(Path(folder)))
        text = json.dumps(expected, indent=1, ensure_ascii=False) + "\n"
        (CORPUS / name / "expected.json").write_text(text, encoding="utf-8")
        print(
            f"{name}: {len(expected['tracker'])} reports, {len(expected['store']['calls'])} calls"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expected", action="store_true", help="only rewrite expected.json")
    args = parser.parse_args(argv)
    if not args.expected:
        capture()
    write_expected()


if __name__ == "__main__":
    main()
