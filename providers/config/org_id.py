"""What an organization id may be: safe in an HTTP header and a log line.

Matched against the whole string (``fullmatch``): ``re.match`` with ``$`` also accepts a
trailing newline, which then breaks the backend request locally — and a request that
cannot be built must refuse the org, never pass for a backend outage that runs the call on
the worker's own keys.
"""

from __future__ import annotations

import re

ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
ORG_ID_RULE = "letters, digits and ._:@- only, at most 128 characters"
HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
"""A header value we send as is: visible ASCII, inner spaces, nothing to fold or split."""


def valid_org_id(value: object) -> bool:
    return isinstance(value, str) and ORG_ID.fullmatch(value) is not None


def header_safe(value: str) -> bool:
    return HEADER_VALUE.fullmatch(value) is not None
