"""schemathesis hooks for scripts/schemathesis (named in schemathesis.toml).

Generated requests reuse a few short values for the optional `Idempotency-Key` header, so two
unrelated POSTs can share a key: the second is then answered with the first's response, as
the header promises (or 409 when the body differs). In the stateful phase that replay hands
back a resource an earlier scenario deleted, which schemathesis reads as "created resource not
found". A well-formed key is therefore made unique per request; malformed keys are sent as
generated, so that their refusal (400) is still checked. Replays themselves are tested in
api/tests/api/idempotency.rs.
"""

import re
import uuid

import schemathesis

_WELL_FORMED = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def map_headers(context, headers):
    if not headers:
        return headers
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and _WELL_FORMED.match(value):
            headers[name] = f"st-{uuid.uuid4()}"
    return headers
