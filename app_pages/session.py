"""This browser on a shared server (not a page): its identity, the door, the teacher's view.

`browser_id()` is what every job is owned by: a random token from this browser's cookie,
so a reloaded page finds its jobs again. While any page of the browser is open the job
manager counts it as present; when the last one closes, its jobs outlive it for
`MOA_BROWSER_TTL` seconds. A code given (the door's, the teacher's) is remembered in a
cookie as a keyed digest, so a reload does not ask again.
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from moa_core import access
from moa_core.train.jobs import job_manager

BROWSER_KEY = "_moa_browser"
DOOR_KEY = "_moa_door_open"
TEACHER_KEY = "_moa_teacher"
COOKIE_AGE = 60 * 60 * 24 * 365  # a school year: the identity outlives every reload
HEARTBEAT_SECONDS = 30  # a page with nothing live still says it is open this often
_GUESSES = threading.Lock()  # wrong codes are paid for one after another, server-wide
READ_ONLY_NOTE = "Saving runs is turned off for students on this server (MOA_RUNS_READONLY)."


def _page_closed(browser: str) -> None:
    job_manager().presence.disconnect(browser, time.monotonic())


@st.cache_resource(scope="session", on_release=_page_closed, show_spinner=False)
def _page_open(browser: str) -> str:
    """Count this session as one open page of `browser` until Streamlit ends the session."""
    job_manager().presence.connect(browser)
    return browser


def _token() -> str:
    """This browser's token: its cookie's, or a new one (written by `remember`)."""
    if BROWSER_KEY not in st.session_state:
        cookie = st.context.cookies.get(access.BROWSER_COOKIE)
        valid = access.valid_token(cookie)
        st.session_state[BROWSER_KEY] = cookie if valid else access.new_browser_token()
    return st.session_state[BROWSER_KEY]


def browser_id() -> str:
    """This browser's identity, counted as present while this page is open."""
    browser = _token()
    _page_open(browser)
    return browser


def heartbeat() -> None:
    """Count this page as open again. Streamlit ends a session's caches when its socket
    drops (a Wi-Fi blip too); after the reconnect only a rerun counts the page again, and a
    page with nothing live never reruns by itself: this runs every HEARTBEAT_SECONDS."""
    browser_id()


def browser_name() -> str:
    return access.short_name(browser_id())


def _set_cookie(name: str, value: str, keep_existing: bool = False) -> None:
    """Write a cookie from the page (Streamlit sends none itself); only URL-safe values.
    `keep_existing`: not over one another tab of this browser wrote meanwhile."""
    write = f"document.cookie = '{name}={value}; path=/; max-age={COOKIE_AGE}; SameSite=Strict'"
    if keep_existing:
        write = f"if (!document.cookie.split('; ').some(c => c.startsWith('{name}='))) {write}"
    st.html(f"<script>{write};</script>", unsafe_allow_javascript=True)


def _passes() -> dict[str, tuple[str | None, str, str]]:
    """Per code-guarded door: (its code, the session key, the cookie)."""
    return {
        "door": (access.door_code(), DOOR_KEY, access.DOOR_COOKIE),
        "teacher": (access.teacher_code(), TEACHER_KEY, access.TEACHER_COOKIE),
    }


def remember() -> None:
    """Keep this browser's identity, and the passes of the codes it gave, in cookies."""
    browser = browser_id()
    wanted = {access.BROWSER_COOKIE: browser}
    for door, (code, key, cookie) in _passes().items():
        if code and st.session_state.get(key):
            wanted[cookie] = access.code_pass(code, browser, door)
    with st.sidebar:
        for name, value in wanted.items():
            if st.context.cookies.get(name) != value:
                _set_cookie(name, value, keep_existing=name == access.BROWSER_COOKIE)


def _given(door: str) -> bool:
    """Whether this session gave `door`'s code, here or (by its cookie) in this browser."""
    code, key, cookie = _passes()[door]
    if st.session_state.get(key):
        return True
    kept = st.context.cookies.get(cookie)
    if (
        code
        and isinstance(kept, str)
        and access.codes_match(kept, access.code_pass(code, _token(), door))
    ):
        st.session_state[key] = True
    return bool(st.session_state.get(key))


def _code_form(door: str, label: str, button: str, wrong: str, help: str | None = None) -> None:
    """A password field for `door`'s code; the right one opens it for this browser."""
    code, key, _ = _passes()[door]
    with st.form(door):
        given = st.text_input(label, type="password", help=help)
        entered = st.form_submit_button(button, type="primary")
    if entered and code and access.codes_match(given, code):
        st.session_state[key] = True
        st.rerun()
    if entered:
        with _GUESSES:  # parallel sessions cannot guess faster than one code a second
            time.sleep(access.WRONG_CODE_PAUSE)
        st.error(wrong)


def door_open() -> bool:
    """Whether this session may see the lab (no code is set, or it was given); otherwise
    shows the code form. A browser at the door is not counted as present."""
    if access.door_code() is None or _given("door"):
        return True
    st.title("Mixture Lab")
    _code_form(
        "door",
        "Access code",
        "Enter",
        "That code is not right. Ask your teacher for the access code.",
        help="Your teacher has it.",
    )
    return False


def is_teacher() -> bool:
    """The teacher: whoever gave `MOA_TEACHER_CODE` in this browser, or, when no teacher
    code is set, a browser on the server's own machine (Streamlit reports no address for a
    localhost peer: behind a reverse proxy on the same machine, set a teacher's code)."""
    if access.teacher_code() is None:
        return st.context.ip_address is None
    return _given("teacher")


def teacher_login() -> bool:
    """The teacher's code form (when one is set and not given yet); whether it is given."""
    if is_teacher():
        return True
    if access.teacher_code() is None:
        st.info("The teacher's view is open on the server's own machine only.")
        return False
    _code_form(
        "teacher", "Teacher's code", "Open the teacher's view", "That is not the teacher's code."
    )
    return False


def can_save_runs() -> bool:
    return not access.runs_read_only() or is_teacher()
