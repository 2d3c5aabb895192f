"""Usage tracking, counted off the request path and exact after a flush.

``recorder`` (the request path's in-memory buffer and the shipper thread), ``transport`` (the
counters in Redis), ``rows`` (counts into hourly rows), ``flush`` and ``prune`` (the beat jobs),
``stats`` (the figures the admin, the API and the CLI show) and ``chart`` (the key page's SVG).
"""
