"""An agent's dangerous function, guarded: a refund runs only once a person approves it.

    export WAITPOINT_URL=http://127.0.0.1:5000 WAITPOINT_API_KEY=wp_...
    python examples/approval_agent.py 42 240 "The parcel arrived damaged."

It prints the approval page's URL and waits. On the page the approver may lower the
amount before approving; the refund is made with the amount they approved. Rejected,
timed out or withdrawn, nothing is refunded. Asked again for the same refund within a
day (the agent restarted), it waits on the same approval instead of asking twice, and
gets the same answer: once approved, it runs again, so the payment itself must be
idempotent too (give the provider the same key).
"""

from __future__ import annotations

import sys

from waitpoint import ApprovalError, ApprovalRejected, Decision, require_approval


def refund_form(customer_id: int, amount_eur: float, reason: str) -> dict:
    """The amount, filled in with what the agent asks for; lower it, never raise it."""
    amount = {"type": "number", "title": "Refund (EUR)", "minimum": 0.01, "maximum": amount_eur}
    return {
        "type": "object",
        "properties": {"amount_eur": {**amount, "default": amount_eur}},
        "required": ["amount_eur"],
    }


@require_approval(
    title=lambda customer_id, amount_eur, reason: (
        f"Refund €{amount_eur:.2f} to customer #{customer_id}?"
    ),
    description=lambda customer_id, amount_eur, reason: (
        f"The customer says: {reason}\nPolicy allows refunds up to €300."
    ),
    details=lambda customer_id, amount_eur, reason: {
        "Customer": customer_id,
        "Asked for (EUR)": amount_eur,
    },
    tags=lambda customer_id, amount_eur, reason: [f"customer:{customer_id}", "kind:refund"],
    form=refund_form,
    approve_label="Refund",
    reject_label="Don't refund",
    timeout="24h",
    idempotency_key=lambda customer_id, amount_eur, reason: f"refund-{customer_id}-{amount_eur}",
    idempotency_key_ttl="24h",
    notify=lambda url: print(f"Waiting for a human. Approval page: {url}", flush=True),
)
def refund(customer_id: int, amount_eur: float, reason: str, *, approval: Decision) -> float:
    """The dangerous part. Runs only once approved, with the amount the approver set."""
    amount = approval.response["amount_eur"]
    who = approval.approver or "the approver"
    note = f" ({approval.comment})" if approval.comment else ""
    print(f"Refunding €{amount:.2f} to customer #{customer_id}, approved by {who}{note}.")
    # A real agent calls the payment provider here, with f"refund-{customer_id}-{amount_eur}"
    # as its idempotency key: a retry then never pays twice.
    return amount


if __name__ == "__main__":
    customer, asked = int(sys.argv[1]), float(sys.argv[2])
    reason = " ".join(sys.argv[3:]) or "No reason given."
    try:
        refund(customer, asked, reason)
    except ApprovalRejected as exc:
        print(f"Not refunding: {exc.approver or 'the approver'} said no: {exc.comment or '-'}")
        sys.exit(1)
    except ApprovalError as exc:  # ApprovalTimedOut, ApprovalWithdrawn
        print(f"Not refunding: {exc}")
        sys.exit(1)
