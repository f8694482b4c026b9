#!/usr/bin/env python
"""manage.py of the demo site, run from the repository root (see ``make demo``)."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    demo = Path(__file__).resolve().parent
    # demo/ holds the project package ("demo") and its app ("home"); the
    # repository root holds wagtail_vector_index, for a checkout that is not
    # installed. demo/ goes first so "demo" is this project, not the folder.
    for folder in (demo.parent, demo):
        sys.path.insert(0, str(folder))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
