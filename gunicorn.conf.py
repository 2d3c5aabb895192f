# Read by gunicorn when it starts in this folder (its default --config). Keys out of its access
# log: a key sent in a URL (by mistake) is cut back to its public id (crm_keys/redact.py).
logger_class = "crm_keys.redact.GunicornLogger"
