"""Receives Waitpoint's webhook deliveries and verifies each one (the README's receiver).

    export WAITPOINT_WEBHOOK_SECRET=whsec_...   # shown once when the endpoint was added
    flask --app examples/webhook_receiver run --port 8000

Then add http://127.0.0.1:8000/waitpoint-events as an endpoint (dashboard → Webhooks);
a loopback address needs WAITPOINT_WEBHOOK_ALLOW_PRIVATE on the Waitpoint server.
"""

# --- the README's receiver, verbatim ---
import os

from flask import Flask, request

from waitpoint import WebhookVerificationError, webhooks

app = Flask(__name__)
SECRET = os.environ["WAITPOINT_WEBHOOK_SECRET"]  # whsec_...


@app.post("/waitpoint-events")
def waitpoint_event():
    try:
        event = webhooks.verify(request.get_data(), request.headers, SECRET)
    except WebhookVerificationError:
        return "invalid signature", 400
    if event.type == "waitpoint.completed":  # event.data: the token, as retrieve shows it
        print("decided:", event.data["id"], event.data["output"], flush=True)
    return "", 204  # any 2xx is success; anything else is retried, with the same event.id
