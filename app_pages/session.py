"""This browser on a shared server (not a page): its identity, the door, the teacher's view.

`browser_id()` is what every job is owned by: a random token from this browser's cookie,
so a reloaded page finds its jobs again. While any page of the browser is open the job
manager counts it as present; when the last one closes, its jobs outlive it for
`MOA_BROWSER_TTL` seconds.
"""

from __future__ import annotations

import time

import streamlit as st

from moa_core import access
from moa_core.train.jobs import job_manager

BROWSER_KEY = "_moa_browser"
DOOR_KEY = "_moa_door_open"
TEACHER_KEY = "_moa_teacher"
COOKIE_AGE = 60 * 60 * 24 * 365  # a school year: the identity outlives every reload


def _page_closed(browser: str) -> None:
    job_manager().presence.disconnect(browser, time.monotonic())


@st.cache_resource(scope="session", on_release=_page_closed, show_spinner=False)
def _page_open(browser: str) -> str:
    """Count this session as one open page of `browser` until Streamlit ends the session."""
    job_manager().presence.connect(browser)
    return browser


def browser_id() -> str:
    """This browser's identity: its cookie's token, or a new one (written by `remember`)."""
    if BROWSER_KEY not in st.session_state:
        cookie = st.context.cookies.get(access.BROWSER_COOKIE)
        valid = access.valid_token(cookie)
        st.session_state[BROWSER_KEY] = cookie if valid else access.new_browser_token()
    browser = st.session_state[BROWSER_KEY]
    _page_open(browser)
    return browser


def browser_name() -> str:
    return access.short_name(browser_id())


def _set_cookie(name: str, value: str) -> None:
    """Write a cookie from the page (Streamlit sends none itself); only URL-safe values."""
    st.html(
        f"<script>document.cookie = '{name}={value}; path=/; max-age={COOKIE_AGE}; "
        "SameSite=Strict';</script>",
        unsafe_allow_javascript=True,
    )


def remember() -> None:
    """Keep this browser's identity (and its door pass) in cookies for the next reload."""
    browser = browser_id()
    wanted = {access.BROWSER_COOKIE: browser}
    code = access.door_code()
    if code and st.session_state.get(DOOR_KEY):
        wanted[access.DOOR_COOKIE] = access.door_pass(code, browser)
    with st.sidebar:
        for name, value in wanted.items():
            if st.context.cookies.get(name) != value:
                _set_cookie(name, value)


def door_open() -> bool:
    """Whether this session may see the lab: no code is set, or it was given (here or,
    through the cookie, earlier in this browser). Otherwise shows the code form."""
    code = access.door_code()
    if code is None or st.session_state.get(DOOR_KEY):
        return True
    kept = st.context.cookies.get(access.DOOR_COOKIE) or ""
    if access.codes_match(kept, access.door_pass(code, browser_id())):
        st.session_state[DOOR_KEY] = True
        return True
    st.title("Mixture Lab")
    with st.form("door"):
        given = st.text_input("Access code", type="password", help="Your teacher has it.")
        entered = st.form_submit_button("Enter", type="primary")
    if entered and access.codes_match(given, code):
        st.session_state[DOOR_KEY] = True
        st.rerun()
    if entered:
        st.error("That code is not right. Ask your teacher for the access code.")
    return False


def is_teacher() -> bool:
    """The teacher: whoever gave `MOA_TEACHER_CODE` here, or, when no teacher code is set,
    a browser on the server's own machine (Streamlit reports no address for localhost)."""
    if access.teacher_code() is None:
        return st.context.ip_address is None
    return bool(st.session_state.get(TEACHER_KEY))


def teacher_login() -> bool:
    """The teacher's code form (when one is set and not given yet); whether it is given."""
    code = access.teacher_code()
    if is_teacher():
        return True
    if code is None:
        st.info("The teacher's view is open on the server's own machine only.")
        return False
    with st.form("teacher"):
        given = st.text_input("Teacher's code", type="password")
        entered = st.form_submit_button("Open the teacher's view")
    if entered and access.codes_match(given, code):
        st.session_state[TEACHER_KEY] = True
        st.rerun()
    if entered:
        st.error("That is not the teacher's code.")
    return False


def can_save_runs() -> bool:
    return not access.runs_read_only() or is_teacher()


READ_ONLY_NOTE = "Saving runs is turned off for students on this server (MOA_RUNS_READONLY)."
