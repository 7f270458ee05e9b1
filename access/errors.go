package access

import (
	"errors"
	"fmt"

	"switchyard/delivery"
)

// Error codes of the console. They travel in delivery.Error, the one error
// type of the platform, so that an error returned by any console package
// becomes the platform's JSON error contract (delivery.ErrorResponse) at the
// edge without translation. Only the web layer maps them to HTTP statuses.
const (
	EINVALID      = "EINVALID"      // the request is malformed or breaks a rule
	ENOTFOUND     = "ENOTFOUND"     // the thing does not exist
	EFORBIDDEN    = "EFORBIDDEN"    // authenticated, but not allowed
	EUNAUTHORIZED = "EUNAUTHORIZED" // no or wrong credentials
	ECONFLICT     = "ECONFLICT"     // the thing already exists or changed meanwhile
	EINTERNAL     = "EINTERNAL"     // a bug or an outage; never shown in detail
	ETOOMANY      = "ETOOMANY"      // throttled; Details["retry_after_seconds"] says when to retry
)

// Errorf returns a *delivery.Error with a code and a message that is safe to
// show to the user.
func Errorf(code, format string, args ...any) error {
	return &delivery.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorDetails is Errorf with details for the platform error contract.
func errorDetails(code string, details map[string]any, format string, args ...any) error {
	return &delivery.Error{Code: code, Message: fmt.Sprintf(format, args...), Details: details}
}

// internal wraps an internal failure as an EINTERNAL *delivery.Error whose
// message is generic and whose cause (for the log) keeps the context.
func internal(context string, err error) error {
	return &delivery.Error{Code: EINTERNAL, Message: "internal error", Cause: fmt.Errorf("%s: %w", context, err)}
}

func asDeliveryError(err error) (*delivery.Error, bool) {
	var e *delivery.Error
	ok := errors.As(err, &e)
	return e, ok
}

// ErrorCode returns the code of err: the Code of the first *delivery.Error in
// its chain, "" for nil, and EINTERNAL for anything else.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *delivery.Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err. Internal errors get a
// generic text: their details are for the log only.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *delivery.Error
	if errors.As(err, &e) && e.Code != EINTERNAL && e.Code != "" {
		return e.Message
	}
	return "internal error"
}
