"""Names in Locust's statistics that the engine, the personas and the clients write and the report reads.

The whole SSO login as a person feels it (form, credentials, ticket, retries) is recorded as one extra statistics
entry of type LOGIN_FLOW_TYPE beside the HTTP requests it is made of; a person who leaves while a page keeps
failing is one FLOW entry `gave up: <step>`. The SSO's and the platform's steps are the clients' request names
(schoolsurge/clients/): the report's login funnel counts the ones below.
"""

from __future__ import annotations

LOGIN_FLOW_TYPE = "FLOW"
LOGIN_FLOW_NAME = "login"
GAVE_UP_PREFIX = "gave up: "  # FLOW entry of people who left while a page kept failing: `gave up: dashboard`
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
