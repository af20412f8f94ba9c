"""An openEO connection that logs in again, once, when the backend refuses its token.

A backend that came back without its state, or CDSE once an access token has expired,
answers ``403 TokenInvalid``. The ``openeo`` client already retries such a request once
after renewing an OIDC token it knows how to renew (``try_access_token_refresh``); basic
logins and refresh-token logins without a renewer get nothing. This subclass hooks into that
same single retry and, when the client could not renew, repeats the original login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import openeo

log = logging.getLogger(__name__)

Login = Callable[[openeo.Connection], openeo.Connection]


class LoginRenewingConnection(openeo.Connection):
    """A ``Connection`` that repeats ``login`` when the backend refuses the token it holds."""

    def __init__(self, url: str, login: Login, **options) -> None:
        super().__init__(url, **options)
        self._login = login
        self._logging_in = False
        login(self)

    def try_access_token_refresh(self, *, reason: str | None = None) -> bool:
        """The client's own renewal first; else the original login (the client retries the request once)."""
        if super().try_access_token_refresh(reason=reason):
            return True
        if self._logging_in:  # the login's own requests were refused: do not recurse
            return False
        self._logging_in = True
        try:
            self._login(self)
        except Exception as error:  # any failed login leaves the original refusal to be raised to the caller
            log.error("logging in again at %s failed (%s): %s", self.root_url, type(error).__name__, error)
            return False
        finally:
            self._logging_in = False
        log.info("the backend at %s refused the token (%s); logged in again", self.root_url, reason)
        return True
