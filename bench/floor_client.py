"""The floor: patbot's JSON-report reads done by the leanest client Python allows, to show what is left.

Standard library only (no databricks-sdk, no settings, no retries, no report): every workspace of
`PATBOT_WORKSPACES` at once on one asyncio loop, as patbot reads them for `patbot audit --format json`:

    round 1  tokens, token settings, token permissions, service principals (every page)
    round 2  the tokens' owners among the users (ID filters of 50), each active principal's OAuth secrets

Every answer is decoded as JSON and dropped. Whatever this process takes is the machine and the emulator,
not patbot; `bench/audit_fleet.py` times it beside `patbot audit`. Plain HTTP only (the emulator).
Run: `.venv/bin/python bench/floor_client.py` (credentials: `DATABRICKS_TOKEN`).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import urlencode, urlsplit

USERS = "/api/2.0/preview/scim/v2/Users"
SPS = "/api/2.0/preview/scim/v2/ServicePrincipals"


class Workspace:
    """Kept-alive connections to one host, at most 16 in flight (as patbot)."""

    def __init__(self, host: str, token: str) -> None:
        parts = urlsplit(host)
        self._where = (parts.hostname or "", parts.port or 80)
        self._head = (
            f"Host: {parts.netloc}\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
        )
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(16)

    async def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        target = path + ("?" + urlencode(query) if query else "")
        async with self._slots:
            reader, writer = self._idle.pop() if self._idle else await asyncio.open_connection(*self._where)
            writer.write(f"GET {target} HTTP/1.1\r\n{self._head}".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            self._idle.append((reader, writer))
        return json.loads(body) if body else {}

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()


async def scim_all(ws: Workspace, path: str, attributes: str) -> list[dict[str, Any]]:
    first = await ws.get(path, {"startIndex": 1, "count": 10000, "attributes": attributes})
    found: list[dict[str, Any]] = list(first.get("Resources") or [])
    step, total = len(found), int(first.get("totalResults") or 0)
    if step:
        pages = await asyncio.gather(
            *(
                ws.get(path, {"startIndex": s, "count": 10000, "attributes": attributes})
                for s in range(1 + step, total + 1, step)
            )
        )
        found += [r for page in pages for r in page.get("Resources") or []]
    return found


async def audit(host: str, token: str) -> int:
    ws = Workspace(host, token)
    sps = asyncio.ensure_future(scim_all(ws, SPS, "id,applicationId,displayName,active"))
    listed, _, _ = await asyncio.gather(
        ws.get("/api/2.0/token-management/tokens"),
        ws.get("/api/2.0/workspace-conf", {"keys": "enableTokensConfig,maxTokenLifetimeDays"}),
        ws.get("/api/2.0/permissions/authorization/tokens"),
    )
    tokens = listed.get("token_infos") or []
    owners = sorted({str(t["owner_id"]) for t in tokens if t.get("owner_id")})
    attributes = "id,userName,displayName,active"
    if len(owners) > 1000:  # as patbot: past 1,000 owners every page of users, not ID filters
        users = [scim_all(ws, USERS, attributes)]
    else:
        batches = [" or ".join(f'id eq "{i}"' for i in owners[k : k + 50]) for k in range(0, len(owners), 50)]
        users = [ws.get(USERS, {"filter": f, "count": 10000, "attributes": attributes}) for f in batches]
    active = [p["id"] for p in await sps if p.get("active", True)]
    await asyncio.gather(
        *users, *(ws.get(f"/api/2.0/accounts/servicePrincipals/{i}/credentials/secrets") for i in active)
    )
    ws.close()
    return len(tokens)


async def main() -> None:
    token = os.environ["DATABRICKS_TOKEN"]
    hosts = [h for h in os.environ["PATBOT_WORKSPACES"].split(",") if h]
    counts = await asyncio.gather(*(audit(h, token) for h in hosts))
    print(f"floor: {sum(counts)} tokens from {len(hosts)} workspace(s)")


if __name__ == "__main__":
    asyncio.run(main())
