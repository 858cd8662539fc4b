"""The ENT's side of single sign-on: its CAS service URL, where the browser lands with a service ticket. The
ENT redeems the ticket and opens a session (an HttpOnly cookie, cookies.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from schoolsurge.platform import cookies, sso
from schoolsurge.platform.routes.dependencies import PlatformDep
from schoolsurge.platform.schemas import Me
from schoolsurge.platform.services import CALLBACK_PATH

router = APIRouter(tags=["single sign-on"])


@router.get(CALLBACK_PATH, summary="The ENT redeems its ticket and opens a session (HttpOnly cookie)")
def auth_callback(platform: PlatformDep, response: Response, ticket: Annotated[str, Query(max_length=256)] = "") -> Me:
    # The ENT validates the ticket over the CAS back channel; here that is an in-process call. Which service the
    # ticket is for comes from the ticket itself and must be one of the ENT's own registered callbacks: never
    # from the Host or X-Forwarded-* headers, which whoever holds a ticket writes as they please.
    account, failure = sso.redeem_at_ent(platform, ticket)
    if account is None:
        raise HTTPException(401, f"ticket rejected: {failure}; log in again")
    cookie = platform.open_session(account)
    cookies.set_session(response, cookie, secure=platform.services.ent_over_https)
    return Me(username=account.username, role=account.role, display_name=account.display_name)
