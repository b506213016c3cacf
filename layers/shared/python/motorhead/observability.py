"""The one powertools Logger of the project (service "motorhead").

Every other module logs through the standard library, ``logging.getLogger(__name__)``: their names start with
``motorhead.``, so their records reach this Logger's handler and come out as the same structured JSON lines, extras
included, without any module but this one knowing about powertools.
"""

from __future__ import annotations

from aws_lambda_powertools.logging import Logger

SERVICE = "motorhead"

logger = Logger(service=SERVICE)
