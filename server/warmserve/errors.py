"""Typed errors, each with its HTTP status and OpenAI error `type` / `code`.

Every failure a client can see is one of these classes, so the API layer turns an
exception into a response by reading its attributes, never by matching its text.
They cross the worker boundary as an `ErrorInfo` (code, message, param) and are
rebuilt on the other side from the same table, `error_from_info`.

    WarmServeError                  500 server_error
    ├── InvalidRequest              400 invalid_request_error
    │   ├── UnsupportedParameter    400 (code unsupported_parameter)
    │   ├── ContextLengthExceeded   400 (code context_length_exceeded)
    │   ├── PreviousResponseNotFound 400 (code previous_response_not_found)
    │   ├── ModelReferenceError     400 (code model_reference_not_found)
    │   └── PayloadTooLarge         413 (code payload_too_large)
    ├── Unauthorized                401 (code invalid_api_key)
    ├── ModelNotFound               404 (code model_not_found)
    ├── ResponseNotFound            404 (code response_not_found)
    ├── ModelExists                 409 (code model_exists)
    ├── Overloaded                  429 (code overloaded), Retry-After
    ├── ModelUnavailable            503 (code model_unavailable), Retry-After
    │   ├── QueueTimeout            503 (code queue_timeout)
    │   ├── ShuttingDown            503 (code shutting_down)
    │   ├── ModelNotLoaded          503 (code model_not_loaded)
    │   ├── ModelFailed             503 (code model_failed), no Retry-After
    │   ├── ModelUnloading          503 (code model_unloading)
    │   └── ModelNotCached          503 (code model_not_cached)
    ├── NotSupported                501 (code not_supported)
    ├── WorkerDied                  503 (code worker_died)
    ├── PoisonRequest               422 (code poison_request)
    ├── RequestTimeout              504 (code request_timeout)
    ├── BackendError                500 (code backend_error)
    │   └── ModelSourceError        500 (code model_source_error)
    │       └── ModelFileError      500 (code model_file_error), permanent
    └── ResponseStoreError          500 (code response_store_error)

Every class registers its code as it is defined, so `error_from_info` knows them all.
A `permanent` error is a load failure that loading again cannot cure (a missing file, a format
or architecture the engine cannot read): the pool reports it once and does not restart the worker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorInfo:
    """Picklable description of an error, sent from a worker to the API process."""

    code: str
    message: str
    param: str | None = None


_BY_CODE: dict[str, type[WarmServeError]] = {}


class WarmServeError(Exception):
    status_code: int = 500
    error_type: str = "server_error"
    code: str = "internal_error"
    retry_after_s: int | None = None  # sent as Retry-After when set
    permanent: bool = False  # as a load failure: loading again would fail the same way

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.code in _BY_CODE and _BY_CODE[cls.code] is not cls:
            raise TypeError(f"error code {cls.code!r} is taken by {_BY_CODE[cls.code].__name__}")
        _BY_CODE[cls.code] = cls

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, param=self.param)

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class InvalidRequest(WarmServeError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class UnsupportedParameter(InvalidRequest):
    code = "unsupported_parameter"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class PreviousResponseNotFound(InvalidRequest):
    """`previous_response_id` names no response this key has stored (OpenAI answers this with a 400)."""

    code = "previous_response_not_found"


class ModelReferenceError(InvalidRequest):
    """A hub reference (`owner/repo:QUANT`) that names nothing there: no such repo, file or quant. The
    message lists what the repo has."""

    code = "model_reference_not_found"


class Unauthorized(WarmServeError):
    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PayloadTooLarge(InvalidRequest):
    status_code = 413
    code = "payload_too_large"


class Overloaded(WarmServeError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "overloaded"
    retry_after_s = 1


class ModelNotFound(WarmServeError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class ResponseNotFound(WarmServeError):
    """A stored response (Responses API) this API key does not have: never stored, deleted, or another key's."""

    status_code = 404
    error_type = "invalid_request_error"
    code = "response_not_found"


class ModelExists(WarmServeError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "model_exists"


class ModelUnavailable(WarmServeError):
    status_code = 503
    code = "model_unavailable"
    retry_after_s: int | None = 5


class QueueTimeout(ModelUnavailable):
    code = "queue_timeout"
    retry_after_s = 1


class ShuttingDown(ModelUnavailable):
    code = "shutting_down"


class ModelNotLoaded(ModelUnavailable):
    """Registered but without workers (unloaded by an admin, and not lazy)."""

    code = "model_not_loaded"


class ModelFailed(ModelUnavailable):
    """Its load failed in a way loading again cannot cure (a ModelFileError): it is not retried. No Retry-After,
    since retrying will not help until an admin fixes the file and loads the model again."""

    code = "model_failed"
    retry_after_s = None


class ModelUnloading(ModelUnavailable):
    """Being unloaded: its requests in flight finish, new ones are turned away."""

    code = "model_unloading"


class ModelNotCached(ModelUnavailable):
    """A hub model that is not in the local cache while the hub cannot be reached (offline, or down)."""

    code = "model_not_cached"
    retry_after_s = 60


class NotSupported(WarmServeError):
    status_code = 501
    code = "not_supported"


class RequestTimeout(WarmServeError):
    status_code = 504
    code = "request_timeout"


class WorkerDied(WarmServeError):
    status_code = 503
    code = "worker_died"


class PoisonRequest(WarmServeError):
    """Each of two workers running the request died; it is not tried again, as it may be what kills them.
    Not a 5xx: clients retry those, and a retry would likely kill another worker."""

    status_code = 422
    code = "poison_request"


class BackendError(WarmServeError):
    code = "backend_error"


class ModelSourceError(BackendError):
    """A model's files could not be had: missing, unreadable, not convertible, or their download failed or did
    not verify; (ModelFileError) not loadable at all, whatever a retry does."""

    code = "model_source_error"


class ModelFileError(ModelSourceError):
    """The model's file is missing, is not a format the engine reads, or holds a variant that cannot be
    converted; the message names the file and what to do. Loading it again would fail the same way."""

    code = "model_file_error"
    permanent = True


class ResponseStoreError(WarmServeError):
    """The stored-response database cannot be opened, read or written; the message names its file."""

    code = "response_store_error"


_BY_CODE[WarmServeError.code] = WarmServeError


def is_permanent(info: ErrorInfo) -> bool:
    """Whether a worker's load error would recur on every retry (see `WarmServeError.permanent`)."""
    return _BY_CODE.get(info.code, WarmServeError).permanent


def error_from_info(info: ErrorInfo) -> WarmServeError:
    """Rebuild the typed error a worker reported; unknown codes become a plain 500."""
    cls = _BY_CODE.get(info.code, WarmServeError)
    return cls(info.message, param=info.param)
