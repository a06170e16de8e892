"""Credentials: who is calling (`Principal`), how a credential is checked, and the limits
each credential is held to."""
