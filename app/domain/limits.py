"""Every limit on what a token carries, in one place.

The API's schemas, the forms, the pages and the table definitions read them from
here, so a limit changes in one line (a column's size also needs a migration).
"""

from __future__ import annotations

TAG_MAX = 128  # characters in a tag
TAGS_MAX = 10  # tags on a token, and in one list filter
TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
DETAILS_MAX = 50  # entries in ``details``
DETAIL_KEY_MAX = 100
DETAIL_VALUE_MAX = 1000  # characters in a string value of ``details``
IDEMPOTENCY_KEY_MAX = 2048
APPROVER_NAME_MAX = 100  # the name an approver types on the page
COMMENT_MAX = 2000  # an approver's or operator's comment
EMAIL_MAX = 320  # an email address (RFC 5321's path limit)
APPROVERS_MAX = 20  # named approvers of a token
REMINDERS_MAX = 5  # reminder emails of a token
BUTTON_LABEL_MAX = 40  # approveLabel, rejectLabel
