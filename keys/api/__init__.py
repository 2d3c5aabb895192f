"""What integrations meet: ``authentication`` (header -> key -> principal), ``lookup`` (the one
query and the key cache), ``protections`` (browser use, IP allowlist, rate limits, the failure
gate), ``permissions`` (scope -> 403), ``middleware``, ``views`` and ``schema``."""
