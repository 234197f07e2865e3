"""Your data: upload a zip of images or a CSV of 2-D points and use it on every page."""

import streamlit as st

st.title("Your data")
st.write("(being built)")
