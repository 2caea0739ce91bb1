"""The local SMS sandbox: a separate app that stands in for Twilio under ``make run`` and in tests.

Not a part of the notifier: the notifier talks to it only through the twilio SDK over HTTP, exactly as it talks
to Twilio. ``app.py`` builds it; ``python -m services.sms_sandbox`` (``crisis-sms-sandbox``) serves it.
"""
