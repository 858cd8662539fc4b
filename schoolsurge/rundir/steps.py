"""Names in Locust's statistics that the engine, the personas and the clients write and the report reads.

The whole SSO login as a person feels it (form, credentials, ticket, retries) is recorded as one extra statistics
entry of type LOGIN_FLOW_TYPE beside the HTTP requests it is made of; a person who leaves while a page keeps
failing is one FLOW entry `gave up: <step>`. A step that raised in the client (a bug of the client, not an answer
of the platform) is one failed entry of type CLIENT_CRASH_TYPE named by the step, its error the exception. The
SSO's and the platform's steps are the clients' request names (schoolsurge/clients/): the report's login funnel
counts the ones below.
"""

from __future__ import annotations

LOGIN_FLOW_TYPE = "FLOW"
LOGIN_FLOW_NAME = "login"
GAVE_UP_PREFIX = "gave up: "  # FLOW entry of people who left while a page kept failing: `gave up: dashboard`
# A person's step that raised in the client: failed, counted in the error ratio (not an HTTP request: the ledger's
# `requests` leaves it out), `CRASH dashboard` with the exception as its error.
CLIENT_CRASH_TYPE = "CRASH"
# Requests of the attack incident's bots carry this prefix, so they are counted apart from people's.
BOT_STEP_PREFIX = "bot "
AGGREGATED = "Aggregated"  # Locust's total row

# The SSO's stages and the first page, as the reference clients name their requests (clients/cas.py, oidc.py,
# reference.py).
LOGIN_FORM = "sso: login form"
SUBMIT_CREDENTIALS = "sso: submit credentials"
# Where a login's proof is redeemed: a CAS ticket, or an OpenID Connect code (clients/oidc.py).
TICKET_STEPS = ("sso: ticket callback", "sso: validate ticket", "sso: code callback", "sso: redeem code")
FIRST_PAGES = ("dashboard", "home")  # the reference clients' landing page, CasClient's and OidcClient's
VIRTUAL_CLASS_JOIN = "virtual class: join"

# The client's steps (PlatformClient's methods, as client_steps.json names them) a virtual class is made of: a client
# that skips one cannot have people in a virtual class as planned (report/outcome/against_plan.py).
VIRTUAL_CLASS_STEPS = frozenset(
    {
        "schedule_virtual_class",
        "open_virtual_class",
        "join_virtual_class",
        "heartbeat",
        "leave_virtual_class",
        "participants",
    }
)
