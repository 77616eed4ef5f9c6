"""Helpers for the Playwright tests: API calls to the live server, axe-core."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from .support import ROOT, TOKENS, waitpoint_command

PASSWORD = "correct horse battery staple"


def create_operator(server, project: str, email: str = "ops@example.com") -> str:
    """An operator of ``project`` on a live server, made as an operator would: the CLI,
    with the password on stdin."""
    subprocess.run(
        [*waitpoint_command(), "users", "create", "--email", email, "--project", project],
        cwd=ROOT,
        env=server.env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return email


AXE = Path(__file__).parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"


class LiveApi:
    def __init__(self, server, key: str):
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )

    def create(self, **body) -> dict:
        response = self.http.post(TOKENS, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def retrieve(self, token_id: str) -> dict:
        return self.http.get(f"{TOKENS}/{token_id}").json()

    def complete(self, token_id: str, data) -> dict:
        return self.http.post(f"{TOKENS}/{token_id}/complete", json={"data": data}).json()


def serious_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    assert AXE.exists(), "run tests/prepare (npm ci in tests/a11y)"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
