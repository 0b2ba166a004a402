"""The application: the processes `serve` runs, their wiring and settings loader, start-up checks,
the scheduler, callback dialling, the listener's persistence and the demo (DESIGN.md, issue 15).

It sits above the AMI adapter (the rest of ``hotline``) and the library packages; nothing of
ours imports it except ``cli.py``.
"""
