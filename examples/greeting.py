"""A first workflow: look a user up, do two things at once, branch on the result.

Try it::

    rappelx run examples.greeting:Greeting --input '{"user_id": "u1"}' --local
    rappelx visualize examples.greeting:Greeting -o greeting.svg
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rappelx import RetryPolicy, Workflow, action, workflow

_USERS = {"u1": "Ada", "u2": "Grace"}
_VISITS = {"u1": 3, "u2": 12}


@dataclass(frozen=True)
class User:
    """A user of the example application."""

    id: str
    name: str


@action
async def fetch_user(user_id: str) -> User:
    """Look a user up (a database call in a real application)."""
    if user_id not in _USERS:
        raise KeyError(user_id)
    return User(user_id, _USERS[user_id])


@action
async def count_visits(user_id: str) -> int:
    """How often the user came back."""
    return _VISITS.get(user_id, 0)


@action(retry=RetryPolicy(attempts=3, exceptions=(ConnectionError,)))
async def pick_greeting(name: str) -> str:
    """A greeting for ``name`` (a call to a flaky service in a real application)."""
    return f"Hello, {name}"


@workflow
class Greeting(Workflow):
    """Greet a user, more warmly when they visit often."""

    async def run(self, user_id: str) -> str:
        try:
            user = await fetch_user(user_id)
        except LookupError:
            return f"Hello, stranger (no user {user_id!r})"
        visits, greeting = await asyncio.gather(count_visits(user.id), pick_greeting(user.name))
        if visits > 10:
            greeting += ", welcome back!"
        else:
            greeting += "!"
        return f"{greeting} ({visits} visits)"
