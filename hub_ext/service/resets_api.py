"""Resets, backups and the audit log over the REST API.

What a reset does is hub_ext.homes.recipe; here: who may ask for one, and the answers.
Every attempt is written to the audit log, refused ones too.
"""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext.service.base import RESET_SCOPE, APIHandler, bool_field, int_value, str_field
from hub_ext.service.db import AuditEntry


def may_reset(scopes: set[str], actor: str, target: str, target_groups: list[str],
              course_groups: tuple[str, ...]) -> bool:
    """Students may reset themselves; admins anyone; a course's instructors (scope filtered
    to one of the course's groups) only that course's students."""
    if actor == target or RESET_SCOPE in scopes or f"{RESET_SCOPE}!user={target}" in scopes:
        return True
    return any(f"{RESET_SCOPE}!group={g}" in scopes for g in target_groups if g in course_groups)


def backup_dict(b) -> dict:
    return {"volume": b.volume, "user": b.user, "course": b.course, "home_volume": b.home_volume,
            "created": b.created.isoformat(), "size_bytes": b.size_bytes}


async def _refusal(ctx, scopes: set[str], actor: str, target: str, course_id: str, course_groups) -> str | None:
    """Why `actor` may not reset `target` in this course, or None if they may."""
    model = await ctx.hub.user(target)
    if not may_reset(scopes, actor, target, (model or {}).get("groups", []), course_groups):
        return (f"You may not reset {target}'s {course_id} environment: "
                f"that needs the scope {RESET_SCOPE} for them or their course group")
    return None


def _course_groups(ctx, course_id: str) -> tuple[str, ...]:
    return tuple(g for t in ctx.catalog().courses[course_id].templates for g in t.groups)


async def authorize_reset(ctx, scopes: set[str], actor: str, targets: list[str], course_id: str) -> list[str]:
    """The targets, if `actor` may reset every one of them in this course; else 403 (and an
    audit entry for the refusal). Unknown users are 404."""
    course_groups = _course_groups(ctx, course_id)
    for target in targets:
        refusal = await _refusal(ctx, scopes, actor, target, course_id, course_groups)
        if refusal:
            ctx.audit(actor, "reset", target, course_id, "refused", "missing scope")
            raise web.HTTPError(403, refusal)
        if await ctx.hub.user(target) is None:
            raise web.HTTPError(404, f"No such user: {target}")
    return targets


async def partition_reset_targets(ctx, scopes: set[str], actor: str, targets: list[str],
                                  course_id: str) -> tuple[list[str], list[dict]]:
    """For a course-wide reset: the targets `actor` may reset, and a result for each of the
    others saying why not (each refusal audited). 403 only if every target is refused."""
    course_groups = _course_groups(ctx, course_id)
    allowed, refused = [], []
    for target in targets:
        refusal = await _refusal(ctx, scopes, actor, target, course_id, course_groups)
        if refusal is None:
            allowed.append(target)
        else:
            ctx.audit(actor, "reset", target, course_id, "refused", "missing scope")
            refused.append({"user": target, "result": "refused", "message": refusal})
    if refused and not allowed:
        raise web.HTTPError(403, f"You may not reset any of the {len(refused)} {course_id} environments: that "
                                 f"needs the scope {RESET_SCOPE} for their course group")
    return allowed, refused


class ResetsHandler(APIHandler):
    async def post(self):
        body = self.json_body()
        course_id = str_field(body, "course", required=True)
        catalog = self.ctx.catalog()
        if course_id not in catalog.courses:
            raise web.HTTPError(400, f"No such course: {course_id!r}. Courses: {', '.join(catalog.courses)}")
        if bool_field(body, "all"):
            if str_field(body, "confirm") != course_id:
                raise web.HTTPError(400, f"A course-wide reset needs \"confirm\": \"{course_id}\"")
            targets = sorted(await asyncio.to_thread(self.ctx.homes.users_with_homes, course_id))
        else:
            user = body.get("user", self.username)
            if not isinstance(user, str) or not user:
                raise web.HTTPError(400, "\"user\" must be a user name")
            targets = [user]
        unknown = set(body) - {"course", "user", "all", "confirm"}
        if unknown:
            raise web.HTTPError(400, f"Unknown fields: {', '.join(sorted(unknown))}; allowed: course, user, all, confirm")

        if body.get("all"):  # reset those the actor may; list the others with why
            allowed, refused = await partition_reset_targets(self.ctx, self.scopes, self.username, targets,
                                                             course_id)
        else:
            allowed, refused = await authorize_reset(self.ctx, self.scopes, self.username, targets, course_id), []
        results = await self.ctx.homes.reset_many(self.username, allowed, course_id)
        failed = [r for r in results if r["result"] != "ok"]
        self.write_json({"course": course_id, "results": results + refused},
                        500 if failed and len(allowed) == 1 else 200)


class BackupsHandler(APIHandler):
    async def get(self):
        user = self.get_argument("user", None)
        if user != self.username and RESET_SCOPE not in self.scopes:
            if user is None:
                user = self.username  # students see their own
            else:
                raise web.HTTPError(403, f"Listing {user}'s backups needs the scope {RESET_SCOPE}")
        backups = await asyncio.to_thread(self.ctx.homes.backups, user=user, course=self.get_argument("course", None))
        self.write_json({"backups": [backup_dict(b) for b in backups]})


class BackupHandler(APIHandler):
    async def _backup(self, name: str):
        if RESET_SCOPE not in self.scopes:
            raise web.HTTPError(403, f"Restoring or deleting backups needs the scope {RESET_SCOPE}")
        backup = await asyncio.to_thread(self.ctx.homes.find_backup, name)
        if backup is None:
            raise web.HTTPError(404, f"No such backup: {name}")
        return backup

    async def post(self, name: str, action: str):
        if action != "restore":
            raise web.HTTPError(404, f"No such action: {action}; allowed: restore")
        backup = await self._backup(name)
        result = await self.ctx.homes.restore(self.username, backup)
        self.write_json(result, 200 if result["result"] == "ok" else 500)

    async def delete(self, name: str, action: str | None = None):
        backup = await self._backup(name)
        if self.get_argument("confirm", "") != name:
            raise web.HTTPError(400, f"Deleting a backup cannot be undone: repeat its name as ?confirm={name}")
        result = await self.ctx.homes.delete_backup(self.username, backup)
        self.write_json(result, 200 if result["result"] == "ok" else 500)


class AuditHandler(APIHandler):
    def get(self):
        if RESET_SCOPE not in self.scopes:
            raise web.HTTPError(403, f"The audit log needs the scope {RESET_SCOPE}")
        limit = int_value("limit", self.get_argument("limit", "200"), 1, 1000)
        with self.ctx.db() as s:
            rows = s.query(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).all()
        self.write_json({"entries": [r.to_dict() for r in rows]})


def handlers(prefix: str) -> list:
    return [
        (prefix + r"api/resets", ResetsHandler),
        (prefix + r"api/backups", BackupsHandler),
        (prefix + r"api/backups/([^/]+)(?:/(\w+))?", BackupHandler),
        (prefix + r"api/audit", AuditHandler),
    ]

