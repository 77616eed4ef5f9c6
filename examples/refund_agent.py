"""An agent asks a human before a refund, and waits for the answer.

    export WAITPOINT_URL=http://127.0.0.1:5000 WAITPOINT_API_KEY=wp_...
    python examples/refund_agent.py 42 240

Open the printed URL in a browser (or POST JSON to it) to decide.
"""

from __future__ import annotations

import sys

from waitpoint import WaitpointTimeoutError, wait


def ask_before_refund(customer_id: int, amount_eur: float) -> bool:
    token = wait.create_token(
        timeout="24h",
        tags=[f"customer:{customer_id}", "kind:refund"],
        # The same refund request never creates a second approval, even if the agent restarts.
        idempotency_key=f"refund-{customer_id}-{amount_eur}",
        idempotency_key_ttl="24h",
        title=f"Refund €{amount_eur:.2f} to customer #{customer_id}?",
        description="The customer reports a damaged parcel.\nPolicy allows refunds up to €300.",
        details={"Customer": customer_id, "Amount (EUR)": amount_eur, "Photos attached": True},
    )
    print(f"Waiting for a human. Approval page: {token.url}", flush=True)
    try:
        decision = wait.for_token(token).unwrap()
    except WaitpointTimeoutError as exc:
        print(f"Nobody answered in time ({exc}); not refunding.")
        return False
    # From the approval page: {"approved": bool, "comment": str, "approver": str | None};
    # from an integration, whatever JSON it posted.
    approved = bool(decision.get("approved")) if isinstance(decision, dict) else False
    who = decision.get("approver") if isinstance(decision, dict) else None
    print(f"{'Approved' if approved else 'Rejected'} by {who or 'someone'}: {decision}")
    return approved


if __name__ == "__main__":
    customer, amount = int(sys.argv[1]), float(sys.argv[2])
    sys.exit(0 if ask_before_refund(customer, amount) else 1)
