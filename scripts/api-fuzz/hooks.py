"""Schemathesis hooks for ``scripts/test-api-fuzz.sh``: what a correct client does that
a schema cannot say.

* ``Idempotency-Key``: a client sends a new key with each new request (the same key
  with another body is a ``422 idempotency_key_reused`` by design, README "Idempotent
  writes"); schemathesis would reuse one generated value across cases.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers
    if headers:
        for name in list(headers):
            if name.lower() == "idempotency-key":
                headers[name] = str(uuid.uuid4())
