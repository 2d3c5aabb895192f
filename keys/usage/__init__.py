"""Usage tracking, counted off the request path and exact after a flush.

``recorder`` (the request path's in-memory buffer and the shipper thread), ``callers`` (a
key's clients and errors, recorded beside the counts), ``transport`` (the counters in Redis),
``rows`` (counts, clients and errors into tables), ``flush`` and ``prune`` (the beat jobs),
``stats`` (the figures the admin, the API and the CLI show), ``insights`` (clients, recent
errors, unused permissions, the rotation cutover) and ``chart`` (the key page's SVG).
"""
