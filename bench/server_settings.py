"""Settings of the chat server under benchmark: the product's settings, one change.

Sign-up hashes a password with PBKDF2 (hundreds of milliseconds of CPU); creating
10,000 benchmark users that way would take most of an hour and measures nothing the
benchmark is about, so the benchmark server uses the fast hasher the test suite uses.
Everything else (and every environment variable) is the product's.
"""

from chatproject.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
