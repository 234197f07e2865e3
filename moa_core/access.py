"""Who is who on a shared server: browser identities, their short names, and the door code.

A browser is known by a random token kept in a cookie (never derived from anything another
browser can see). The door code (`MOA_ACCESS_CODE`) and the teacher's code
(`MOA_TEACHER_CODE`) are compared in constant time and never logged; a browser that gave a
code keeps a keyed digest of it in a cookie, so a reload does not ask again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets

BROWSER_COOKIE = "moa_browser"
DOOR_COOKIE = "moa_door"
TEACHER_COOKIE = "moa_teacher"
WRONG_CODE_PAUSE = 1.0  # s a wrong code costs: guessing a class's code by brute force is slow
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_ADJECTIVES = (
    "amber azure brave calm coral crisp dusky eager fern frosty gentle golden hazel ivory "
    "jade keen lilac lively mellow misty noble olive pearl plum quick rosy ruby sandy silver "
    "sunny swift teal"
).split()
_ANIMALS = (
    "badger beaver bison crane dingo eagle ferret finch gecko heron ibis koala lemur lynx "
    "marten moose newt ocelot otter owl panda puffin quail raven seal stoat swan tapir "
    "toucan walrus wombat yak"
).split()


def new_browser_token() -> str:
    return secrets.token_urlsafe(18)


def valid_token(token: str | None) -> bool:
    return isinstance(token, str) and bool(_TOKEN.match(token))


def short_name(token: str) -> str:
    """A name a teacher can read out ("teal-otter-4c"), the same for a token every time;
    it reveals nothing usable of the token."""
    digest = hashlib.sha256(token.encode()).digest()
    adjective = _ADJECTIVES[digest[0] % len(_ADJECTIVES)]
    animal = _ANIMALS[digest[1] % len(_ANIMALS)]
    return f"{adjective}-{animal}-{digest[2]:02x}"


def codes_match(given: str, expected: str) -> bool:
    """Constant-time comparison of a typed code with the configured one."""
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def code_pass(code: str, browser: str, door: str) -> str:
    """What a browser that gave the right code for `door` ("door", "teacher") keeps in its
    cookie: a digest keyed by the code, bound to that browser, so it can be neither forged
    nor carried to another browser."""
    return hmac.new(code.encode(), f"{door}:{browser}".encode(), hashlib.sha256).hexdigest()


def door_code() -> str | None:
    return os.environ.get("MOA_ACCESS_CODE") or None


def teacher_code() -> str | None:
    return os.environ.get("MOA_TEACHER_CODE") or None


def runs_read_only() -> bool:
    """`MOA_RUNS_READONLY=1`: students cannot add to the saved runs (the teacher can)."""
    return os.environ.get("MOA_RUNS_READONLY", "").strip().lower() in ("1", "true", "yes")
