"""Start: what the lab is, and one card per lesson that opens its page on a gallery run."""

import streamlit as st

st.title("Mixture Lab")
st.write("(being built)")
