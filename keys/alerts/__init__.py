"""Usage alerts: ``rules`` (when an episode opens and clears) and ``notify`` (the e-mails)."""
