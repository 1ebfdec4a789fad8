"""Surfaces: the App Home (``views.publish``) and modals (``views.open``, ``views.update``).

As in Slack, a view sent to any of them replaces the previous one whole: only the view's identity
(``id``, ``team_id``, ``app_id``, ``bot_id``, ``root_view_id``) carries over, and a ``submit`` or
``callback_id`` the new view lacks is gone.
"""

from __future__ import annotations

import copy

from bot.sandbox.slack_emulator.args import arg_json, arg_str
from bot.sandbox.slack_emulator.records import Args, MethodHandler, SlackError
from bot.sandbox.slack_emulator.state import EmulatorState


class ViewsMixin(EmulatorState):
    """Home views by user, modals by view id (with the trigger that opened each)."""

    def _views_methods(self) -> dict[str, MethodHandler]:
        return {
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "views.update": self._views_update,
        }

    def modals(self) -> list[Args]:
        """Every modal opened (as last updated), oldest first."""
        with self._lock:
            return [copy.deepcopy(v) for v in self._modals.values()]

    def modal_trigger(self, view_id: str) -> str | None:
        """The ``trigger_id`` that opened modal *view_id* (Slack shows a modal to that trigger's user)."""
        with self._lock:
            return self._modal_triggers.get(view_id)

    def home_view(self, user_id: str) -> Args | None:
        """The App Home view last published for *user_id*."""
        with self._lock:
            view = self._views.get(user_id)
            return copy.deepcopy(view) if view is not None else None

    def _view_object(self, view: Args, view_id: str, root_view_id: str | None = None) -> Args:
        """The view as Slack stores it: identity and defaults, then exactly what the app sent."""
        return {
            "id": view_id,
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "root_view_id": root_view_id or view_id,
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            "state": {"values": {}},
            **view,
            "hash": f"{self.now():.6f}",
        }

    def _views_publish(self, args: Args) -> Args:
        user = self._active_user(arg_str(args, "user_id"))
        view = arg_json(args, "view")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackError("invalid_arguments")
        previous = self._views.get(user.id)
        published = self._view_object(view, previous["id"] if previous else self._new_id("V"))
        self._views[user.id] = published
        return {"view": copy.deepcopy(published)}

    def _views_open(self, args: Args) -> Args:
        if not arg_str(args, "trigger_id"):
            raise SlackError("invalid_trigger_id")
        view = arg_json(args, "view")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        opened = self._view_object(view, self._new_id("V"))
        self._modals[opened["id"]] = opened
        self._modal_triggers[opened["id"]] = arg_str(args, "trigger_id") or ""
        return {"view": copy.deepcopy(opened)}

    def _views_update(self, args: Args) -> Args:
        view_id = arg_str(args, "view_id")
        external_id = arg_str(args, "external_id")
        if view_id:
            current = self._modals.get(view_id)
        elif external_id:
            current = next((v for v in self._modals.values() if v.get("external_id") == external_id), None)
        else:
            raise SlackError("invalid_arguments")
        if current is None:
            raise SlackError("not_found")
        expected = arg_str(args, "hash")
        if expected and expected != current.get("hash"):
            raise SlackError("hash_conflict")
        view = arg_json(args, "view")
        if not isinstance(view, dict) or view.get("type", current.get("type")) != current.get("type"):
            raise SlackError("invalid_arguments")
        updated = self._view_object(view, current["id"], current.get("root_view_id"))
        self._modals[current["id"]] = updated
        return {"view": copy.deepcopy(updated)}
