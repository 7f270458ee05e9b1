package delivery

import (
	"errors"
	"fmt"
)

// Platform error codes used by the delivery core itself. Services add their own.
const (
	CodeValidationFailed = "VALIDATION_FAILED"
	CodeUndecodable      = "UNDECODABLE"
	CodePayloadTooLarge  = "PAYLOAD_TOO_LARGE"
	CodeHandlerFailed    = "HANDLER_FAILED"
	CodeHandlerPanic     = "HANDLER_PANIC"
)

// Error codes of the console's services and stores. They travel in Error,
// so that an error returned by any package becomes the platform's JSON
// error contract (ErrorResponse) at the edge without translation; only the
// web layer maps them to HTTP statuses.
const (
	EINVALID      = "EINVALID"      // the request is malformed or breaks a rule
	ENOTFOUND     = "ENOTFOUND"     // the thing does not exist
	EFORBIDDEN    = "EFORBIDDEN"    // authenticated, but not allowed
	EUNAUTHORIZED = "EUNAUTHORIZED" // no or wrong credentials
	ECONFLICT     = "ECONFLICT"     // the thing already exists or changed meanwhile
	EINTERNAL     = "EINTERNAL"     // a bug or an outage; never shown in detail
	ETOOMANY      = "ETOOMANY"      // throttled; Details["retry_after_seconds"] says when to retry
	ETOOLARGE     = "ETOOLARGE"     // a body over the endpoint's limit; Details["limit_bytes"]
	EUNSUPPORTED  = "EUNSUPPORTED"  // a content coding or media type the endpoint does not take
)

// ErrorCode returns the code of err: the Code of the first *Error in its
// chain, "" for nil, and EINTERNAL for anything else.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err. Internal errors get
// a generic text: their details are for the log only.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL && e.Code != "" {
		return e.Message
	}
	return "internal error"
}

// ErrorBody is the platform error contract's inner object.
type ErrorBody struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// ErrorResponse is the platform error contract: {"error":{"code","message","details"}}.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// Error is an error a handler returns to say what went wrong in the
// platform's terms. Permanent errors skip the remaining retries.
type Error struct {
	Code      string
	Message   string
	Details   map[string]any
	Permanent bool
	Cause     error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns a retryable *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Permanent marks err as not worth retrying: the consumer runner dead-letters
// it at once. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	var de *Error
	if errors.As(err, &de) {
		cp := *de
		cp.Permanent = true
		return &cp
	}
	return &Error{Code: CodeHandlerFailed, Message: err.Error(), Permanent: true, Cause: err}
}

// IsPermanent reports whether err was marked Permanent or is a validation error.
func IsPermanent(err error) bool {
	var de *Error
	if errors.As(err, &de) && de.Permanent {
		return true
	}
	var ve *ValidationError
	return errors.As(err, &ve)
}

// ErrorInfoOf turns a handler error into the error context stored on a dead
// letter: the platform code and message, details, and the Go type of the
// innermost cause as the exception type.
func ErrorInfoOf(err error) ErrorInfo {
	if err == nil {
		return ErrorInfo{}
	}
	info := ErrorInfo{Code: CodeHandlerFailed, Message: err.Error()}
	var de *Error
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		b := ve.Body()
		info.Code, info.Message, info.Details = b.Code, b.Message, b.Details
	case errors.As(err, &de):
		info.Code, info.Message, info.Details = de.Code, de.Message, de.Details
	}
	root := err
	for {
		next := errors.Unwrap(root)
		if next == nil {
			break
		}
		root = next
	}
	info.ExceptionType = fmt.Sprintf("%T", root)
	return info
}
