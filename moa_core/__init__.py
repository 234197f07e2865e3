"""Mixture Lab core library: mixture-of-experts models for deep image clustering.

Never imports Streamlit: the app's pages call into this package, not the other way.
"""

__version__ = "0.1.0"
