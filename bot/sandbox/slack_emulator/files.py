"""Files: ``files.getUploadURLExternal``, the upload POST, ``files.completeUploadExternal``, ``url_private``."""

from __future__ import annotations

from dataclasses import replace

from bot.sandbox.slack_emulator.args import arg_int, arg_list, arg_required, arg_str, split_csv, text_reply
from bot.sandbox.slack_emulator.faults import FaultsMixin
from bot.sandbox.slack_emulator.records import (
    Args,
    Message,
    MethodHandler,
    SlackError,
    UploadedFile,
    WebResponse,
)


class FilesMixin(FaultsMixin):
    """Slack's three-step upload (``files_upload_v2``) and downloading what was shared."""

    def _files_methods(self) -> dict[str, MethodHandler]:
        return {
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    @property
    def uploads(self) -> list[UploadedFile]:
        """Copies of every file upload started, oldest first."""
        with self._lock:
            return [replace(f, channels=list(f.channels)) for f in self._files.values()]

    def _files_get_upload_url_external(self, args: Args) -> Args:
        filename = arg_required(args, "filename")
        length = arg_int(args, "length", -1)
        if length < 0:
            raise SlackError("invalid_arguments")
        file_id = self._new_id("F")
        self._files[file_id] = UploadedFile(file_id, filename, length)
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, args: Args) -> Args:
        entries = arg_list(args, "files")
        if not entries:
            raise SlackError("invalid_arguments")
        # Slack accepts only conversation ids here (^[CGDZ]...), not user ids.
        targets = (
            [arg_str(args, "channel_id")] if args.get("channel_id") else split_csv(arg_str(args, "channels"))
        )
        channels = [self._channel(c, allow_user=False) for c in targets]
        initial_comment = arg_str(args, "initial_comment")
        thread_ts = arg_str(args, "thread_ts")
        completed: list[UploadedFile] = []
        for entry in entries:
            upload = self._files.get(str(entry.get("id", ""))) if isinstance(entry, dict) else None
            if upload is None or upload.content is None:
                raise SlackError("file_not_found")
            upload.title = str(entry.get("title") or upload.filename)
            completed.append(upload)
        for upload in completed:
            upload.channels = channels
            upload.initial_comment = initial_comment
            upload.thread_ts = thread_ts
            upload.completed = True
        infos = [self._file_info(u) for u in completed]
        for channel in channels:
            msg = Message(channel, self._ts(), initial_comment or "", thread_ts=thread_ts, files=infos)
            msg.user = self.bot_user.id
            self._messages.setdefault(channel, {})[msg.ts] = msg
        return {"files": infos}

    def _file_info(self, upload: UploadedFile) -> Args:
        url = f"{self.base_url}/files/{upload.file_id}/{upload.filename}"
        return {
            "id": upload.file_id,
            "created": int(self.now()),
            "timestamp": int(self.now()),
            "name": upload.filename,
            "title": upload.title,
            "mimetype": "text/csv" if upload.filename.endswith(".csv") else "application/octet-stream",
            "filetype": upload.filename.rpartition(".")[2] if "." in upload.filename else "binary",
            "user": self.bot_user.id,
            "size": len(upload.content or b""),
            "url_private": url,
            "permalink": url,
            "channels": [],
            "shares": {},
        }

    def _handle_upload(self, file_id: str, data: bytes) -> WebResponse:
        """``POST /upload/<file_id>``: the bytes of a file announced by ``getUploadURLExternal``."""
        self._delay("upload")
        with self._lock:
            args: Args = {"file_id": file_id, "length": len(data)}
            faulted = self._text_fault("upload", args)
            if faulted is not None:
                return faulted
            upload = self._files.get(file_id)
            if upload is None:
                self._record("upload", args, 404, "file_not_found")
                return text_reply("file_not_found", 404)
            upload.content = data
            self._record("upload", args)
            return text_reply(f"OK - {len(data)}")

    def _handle_file_download(self, file_id: str, name: str) -> WebResponse:
        """``url_private``: the content of a completed upload."""
        with self._lock:
            upload = self._files.get(file_id)
            if upload is None or not upload.completed or upload.content is None or upload.filename != name:
                return text_reply("file_not_found", 404)
            content_type = "text/csv; charset=utf-8" if name.endswith(".csv") else "application/octet-stream"
            if name.endswith(".png"):
                content_type = "image/png"
            return WebResponse(200, upload.content, content_type=content_type)
