"""The distribution spec's error codes, each with its HTTP status and message.

Every failure the registry reports is a RegistryError; the server turns it into
    {"errors": [{"code": "...", "message": "...", "detail": ...}]}
with the status below (the table follows the OCI distribution-spec's error
code list and the statuses docker/distribution answers with).
"""
from __future__ import annotations

CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "RANGE_INVALID": (416, "invalid content range"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
}


class RegistryError(Exception):
    def __init__(self, code: str, detail: object = None, headers: dict[str, str] | None = None):
        self.code = code
        self.status, self.message = CODES[code]
        self.detail, self.headers = detail, headers or {}
        super().__init__(f"{code}: {detail if detail is not None else self.message}")

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}
