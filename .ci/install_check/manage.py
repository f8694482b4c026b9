#!/usr/bin/env python
"""manage.py of the throwaway project .ci/check_install.sh installs the package
into (copied out of the checkout first)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
